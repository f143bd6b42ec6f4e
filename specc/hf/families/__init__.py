"""The families specc reads from and writes to Hugging Face `transformers`. Importing registers them."""

from specc.hf.families import bert, decoders, distilbert, seq2seq  # noqa: F401  (registration)
from specc.hf.family import FAMILIES

FAMILIES.complete(__name__, __path__)  # a family file missing from the import line fails here

__all__ = ["FAMILIES"]
