"""The version of specc (one place; the package, run lineage and `specc --version` read it)."""

__version__ = "0.1.0"
