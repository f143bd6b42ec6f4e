"""The families specc reads from and writes to Hugging Face `transformers`. Importing registers them."""

from specc.hf.families import bert, decoders, distilbert, seq2seq  # noqa: F401  (registration)
from specc.hf.family import FAMILIES

__all__ = ["FAMILIES"]
