"""Parquet files and `datasets` on-disk folders (``Dataset.save_to_disk``), read with pyarrow (the `data` extra).

Rows are records named ``path: row N``. Columns that `datasets` declares as
class labels (``ClassLabel``, or a list of them such as ``ner_tags``) hold
integer ids; they are turned into the dataset's own label names as they are
read, so a task sees ``"B-PER"``, not ``3``. The feature declarations travel
in a Parquet file's schema metadata and in a folder's ``dataset_info.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

from specc.runtime.errors import UserError
from specc.runtime.data.formats.optional import require
from specc.runtime.data.formats.record import ReadOptions, Record, Table

Decode = Callable[[Any, str], Any]  # (value, where) -> value with label ids turned into names


def parquet(path: Path, opts: ReadOptions) -> Table:
    return _table(path, "parquet")


def datasets_folder(path: Path, opts: ReadOptions) -> Table:
    """A folder written by ``Dataset.save_to_disk``; a ``DatasetDict`` folder names its splits."""
    return _table(path, "datasets")


def stream(path: Path, kind: str) -> Iterator[Record]:
    """The rows of a Parquet file (kind "parquet") or a datasets folder ("datasets"), batch by batch, label ids named."""
    batches, features = _parquet(path) if kind == "parquet" else _folder(path)
    decoders = _decoders(features)
    n = 0
    for batch in batches:
        for row in batch:
            where = f"{path}: row {n}"
            for name, decode in decoders.items():
                if row.get(name) is not None:
                    row[name] = decode(row[name], f"{where}, field '{name}'")
            yield Record(row, where)
            n += 1


def _table(path: Path, kind: str) -> Table:
    records = list(stream(path, kind))
    notes = [f"{path}: {'Parquet' if kind == 'parquet' else 'datasets folder'}, {len(records)} rows"]
    named = list(_decoders(_parquet(path)[1] if kind == "parquet" else _folder(path)[1]))
    if named:
        notes.append(f"{path}: label ids of {', '.join(named)} read as the dataset's own label names")
    return Table(records, notes)


Batches = Iterator[list[dict[str, Any]]]


def _parquet(path: Path) -> tuple[Batches, Any]:
    pq = require("pyarrow.parquet", path, "reading Parquet")
    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # pyarrow's errors share no base class worth naming here
        raise UserError(f"{path}: not a readable Parquet file ({err})") from None
    return (b.to_pylist() for b in file.iter_batches()), _hf_features(file.schema_arrow.metadata)


def _folder(path: Path) -> tuple[Batches, Any]:
    pa = require("pyarrow", path, "reading a datasets folder")
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        raise UserError(f"{path}: a datasets folder of several splits ({', '.join(splits)}); point each of data.train / "
                        f"data.validation / data.test at its split's folder, e.g. {path / (splits[0] if splits else 'train')}")
    state, info = path / "state.json", path / "dataset_info.json"
    if not state.is_file():
        raise UserError(f"{path}: not a datasets folder (no state.json; write one with Dataset.save_to_disk)")
    try:
        files = [path / f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        features = json.loads(info.read_text()).get("features") if info.is_file() else None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"{state}: not a datasets state file ({err})") from None

    def batches() -> Batches:
        for f in files:
            with pa.memory_map(str(f)) as source:
                for batch in pa.ipc.open_stream(source):
                    yield batch.to_pylist()

    return batches(), features


def _hf_features(metadata: dict[bytes, bytes] | None) -> Any:
    """The `datasets` feature declarations a Parquet file carries, if it was written by `datasets`."""
    raw = (metadata or {}).get(b"huggingface")
    if raw is None:
        return None
    try:
        return json.loads(raw).get("info", {}).get("features")
    except (json.JSONDecodeError, AttributeError):
        return None


def _decoders(features: Any) -> dict[str, Decode]:
    """Top-level columns with class labels inside, and how to turn their ids into names."""
    if not isinstance(features, dict):
        return {}
    out = {}
    for name, feature in features.items():
        decode = _decoder(feature)
        if decode is not None:
            out[name] = decode
    return out


def _decoder(feature: Any) -> Decode | None:
    if not isinstance(feature, dict):
        return None
    if feature.get("_type") == "ClassLabel" and isinstance(feature.get("names"), list):
        return _class_label(feature["names"])
    if "feature" in feature:  # List / Sequence / LargeList of something
        inner = _decoder(feature["feature"])
        if inner is None:
            return None
        return lambda value, where: [inner(v, f"{where}[{k}]") for k, v in enumerate(value)]
    return None


def _class_label(names: list[str]) -> Decode:
    def decode(value: Any, where: str) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < len(names):
                return names[value]
            hint = " (-1 marks an unlabelled example, as in GLUE's test splits)" if value == -1 else ""
            raise UserError(f"{where}: label id {value} is not one of the {len(names)} label names{hint}")
        return value

    return decode
