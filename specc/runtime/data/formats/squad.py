"""SQuAD JSON, v1.1 and v2.0: one record per question, with fields id, title, question, context, answers
(a list of {text, answer_start}) and, in v2.0, is_impossible (an unanswerable question has no answers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from specc import jsonfile
from specc.runtime.errors import UserError
from specc.runtime.data.formats.compression import open_text
from specc.runtime.data.formats.record import ReadOptions, Record, Table


def squad(path: Path, opts: ReadOptions) -> Table:
    try:
        with open_text(path) as fh:
            doc = jsonfile.parse(fh.read())
    except jsonfile.BadJSON as err:
        raise UserError(f"{jsonfile.place(path, err.line, err) if err.line else path}: invalid JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise UserError(f"{path}: not SQuAD JSON (expected an object with a 'data' list)")
    records = list(_questions(path, doc["data"]))
    unanswerable = sum(1 for r in records if r.fields.get("is_impossible"))
    version = doc.get("version", "?")
    return Table(records, [f"{path}: SQuAD (version {version}): {len(records)} questions"
                           + (f", {unanswerable} of them unanswerable" if unanswerable else "")])


def _questions(path: Path, data: list[Any]) -> Iterator[Record]:
    for i, article in enumerate(data):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for j, para in enumerate(_items(article, "paragraphs", f"{path}: data[{i}]")):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str):
                raise UserError(f"{where}: missing field 'context'")
            for k, qa in enumerate(_items(para, "qas", where)):
                if not isinstance(qa, dict):
                    raise UserError(f"{where}.qas[{k}]: each question must be an object")
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise UserError(f"{where}.qas[{k}]: 'is_impossible' must be true or false")
                answers = qa.get("answers", [])
                if impossible and answers:
                    raise UserError(f"{where}.qas[{k}]: an unanswerable question (is_impossible) lists answers")
                fields = {"id": qa.get("id", f"{i}.{j}.{k}"), "title": title, "question": qa.get("question"),
                          "context": context, "answers": answers}
                if "is_impossible" in qa:
                    fields["is_impossible"] = impossible
                yield Record(fields, f"{where}.qas[{k}]")


def _items(value: Any, key: str, where: str) -> list[Any]:
    items = value.get(key) if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise UserError(f"{where}: missing list '{key}'")
    return items
