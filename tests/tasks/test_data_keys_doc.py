"""docs/finetuning.md's table of data keys is the one the task records generate, so it cannot go stale."""

from __future__ import annotations

from helpers import ROOT
from specc.runtime.tasks import TASKS
from specc.runtime.tasks.base import TaskData
from specc.runtime.tasks.keys_doc import BEGIN, END, data_keys_table, undocumented


def _doc_table() -> str:
    text = (ROOT / "docs" / "finetuning.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "docs/finetuning.md lost its data-keys markers"
    return text.split(BEGIN)[1].split(END)[0].strip()


def test_the_doc_table_is_the_generated_one() -> None:
    assert _doc_table() == data_keys_table(), \
        "docs/finetuning.md's data keys are stale: paste the output of `python -m specc.runtime.tasks.keys_doc`"


def test_every_data_key_of_every_task_type_is_in_the_table_with_its_default() -> None:
    rows = [line.split(" | ") for line in _doc_table().splitlines()[2:]]
    listed = {(key.strip("` †"), default) for _, key, default, _ in rows}
    for name, ttype in TASKS.items():
        data = ttype.params.model_fields["data"].annotation
        for key, info in data.model_fields.items():  # type: ignore[union-attr]
            default = info.get_default(call_default_factory=True)
            shown = "none" if default is None else f'`"{default}"`' if isinstance(default, str) else f"`{default}`"
            assert (key, shown) in listed, f"{name}: data.{key} (default {default!r}) is not in the table"
        own = set(data.model_fields) - set(TaskData.model_fields)  # type: ignore[union-attr]
        assert not own or f"`{name}`" in _doc_table(), f"task type {name} has its own data keys but no rows"


def test_every_data_key_has_a_description() -> None:
    assert undocumented() == []
