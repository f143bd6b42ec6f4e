"""Errors the runtime reports to a person without a traceback."""

from specc.diagnostics import UserError

__all__ = ["UserError"]
