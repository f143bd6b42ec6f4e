"""Built-in demo data for every task type: no download, the same examples on every machine.

Each demo is built either from text that ships with Python itself (the
docstrings of the standard library's own source files, read with `ast`, never
imported; `sys.stdlib_module_names`; `builtins`; `unicodedata`) or generated
deterministically from small hand-written grammars. None of it is real
annotated data; each demo's docstring says exactly what it is. Stdlib-derived
demos depend on the Python version (the same version gives the same data).

| demo          | task type            | what it is |
|---------------|----------------------|------------|
| sentiment     | classification       | generated one-sentence reviews of software, with negation and "but" |
| rating        | regression           | the same reviews with a 1–5 score |
| acceptability | classification       | stdlib docstring sentences vs the same words shuffled (word order) |
| pairs         | classification pair  | two generated reviews of one subject: both positive, both negative or mixed |
| ner           | token_classification | generated sentences naming stdlib modules, builtins, exceptions, Unicode characters |
| qa            | extractive_qa        | SQuAD-style: generated facts about 1-3 people, each question asking for one fact |
| translation   | translation          | a toy English→German grammar: gender, case, adjective endings, verb-final clauses |
"""

from __future__ import annotations

# Each demo module registers its demos when DEMOS first looks one of them up (its table names the module), so a
# check of a spec naming one demo imports that one's module; tests/test_registry.py checks the table.
from specc.runtime.data.demos.base import DEMOS, Demo

__all__ = ["DEMOS", "Demo"]
