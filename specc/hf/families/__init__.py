"""The families specc reads from and writes to Hugging Face `transformers`, one file each. Importing registers them.

A family file declares everything about its `model_type` in one `Family` record
(see `specc.hf.family`); this package gathers what the rest of `specc.hf` looks
up across families: the weight rule sets by name and the detection of a
checkpoint's rule set from its key names.
"""

from __future__ import annotations

from typing import Callable, Mapping

# The order is the order families are tried in when exporting; a file left off this line fails at import below.
from specc.hf.families import bert, roberta, gpt2, llama, distilbert, t5, bart  # noqa: F401  (registration)
from specc.hf.family import FAMILIES
from specc.hf.rules import KeyLayout, RuleSet
from specc.registry import Registry

FAMILIES.complete(__name__, __path__)

# Every family's weight rule sets by name ("bert-mlm"); one name in two families fails here, at import.
KEY_LAYOUTS: Registry[KeyLayout] = Registry("weight rule set")
for _family in FAMILIES.values():
    for _rules in _family.rule_sets:
        KEY_LAYOUTS.register(_rules)

# Rule set name → rules for a checkpoint's key names.
ARCHITECTURES: Mapping[str, Callable[[list[str]], RuleSet]] = {name: r.for_keys for name, r in KEY_LAYOUTS.items()}


def detect_architecture(keys: Mapping[str, object] | list[str]) -> str:
    """Which rule set fits a checkpoint, from its tensor names (each family recognises its own); ValueError if none."""
    names = list(keys)
    for family in FAMILIES.values():
        found = family.detect(names)
        if found is not None:
            return found
    raise ValueError(f"cannot tell the architecture of a checkpoint with keys like {names[:3]}; "
                     f"name one of: {', '.join(ARCHITECTURES)}")


__all__ = ["ARCHITECTURES", "FAMILIES", "KEY_LAYOUTS", "detect_architecture"]
