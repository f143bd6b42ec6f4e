"""The version of specc and of its spec format (one place; the package, run lineage, `specc --version` and
`specc upgrade` read them, and importing this module costs nothing)."""

__version__ = "0.1.0"
FORMAT_VERSION = 1  # the spec format a spec's `format = N` names; specc.migrate upgrades older ones
SPEC_FORMATS = {".toml": "TOML", ".spec": "DSL"}  # a spec file's suffix → its format (specc.frontend.formats)
