"""Optional libraries of the `data` extra (pyarrow, zstandard): imported when a file needs them."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from specc.runtime.errors import UserError

EXTRA = "data"


def require(module: str, path: Path | str, why: str) -> ModuleType:
    """`module` imported, or one clear line naming the file, the library and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise UserError(f"{path}: {why} needs the '{top}' library, which is not installed; "
                        f"install it with pip install 'specc[{EXTRA}]'") from None
