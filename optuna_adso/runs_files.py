"""Rows in and out of CSV, JSON Lines and Parquet files: plain dicts, nothing about runs.

Kept apart from :mod:`optuna_adso.runs_io`, which knows what a run is, so that a format is a few
lines here and the checks on runs are written once.  CSV and JSON Lines use the standard
library; Parquet needs pyarrow (a dependency of the package, imported only when used).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FORMATS = ("csv", "jsonl", "parquet")
SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def format_of(path: str | Path, fmt: str | None = None) -> str:
    """The file format: ``fmt`` if given, else from the suffix; ValueError naming both otherwise."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}; use one of "
            f"{sorted(SUFFIXES)} or pass the format ({list(FORMATS)})"
        )
    return SUFFIXES[suffix]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"Parquet files need pyarrow ({exc}); install it with: pip install pyarrow"
        ) from None
    return pyarrow


def read_rows(path: str | Path, fmt: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every row of the file; ``where`` names the row in error messages
    ("runs.csv line 3").  CSV cells stay strings (empty: None); the caller parses them."""
    path = Path(path)
    fmt = format_of(path, fmt)
    if not path.is_file():
        raise FileNotFoundError(f"no runs file at {str(path)!r}")
    name = path.name
    if fmt == "csv":
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise ValueError(f"{name} is empty: expected a header row")
            return [
                (f"{name} line {reader.line_num}", {k: (v if v != "" else None) for k, v in row.items() if k is not None})
                for row in reader
            ]
    if fmt == "jsonl":
        out = []
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{name} line {i} is not JSON ({exc.msg})") from None
            if not isinstance(row, Mapping):
                raise ValueError(f"{name} line {i} must be a JSON object, got {type(row).__name__}")
            out.append((f"{name} line {i}", dict(row)))
        return out
    table = _pyarrow().parquet.read_table(path)
    return [(f"{name} row {i}", row) for i, row in enumerate(table.to_pylist(), start=1)]


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def rows_to_text(rows: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """CSV or JSON Lines text of ``rows`` (floats written exactly: ``repr`` round-trips)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_columns(rows), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return buf.getvalue()
    if fmt == "jsonl":
        return "".join(json.dumps(dict(row)) + "\n" for row in rows)
    raise ValueError(f"{fmt!r} has no text form; write it to a file (.parquet)")


def write_rows(rows: Sequence[Mapping[str, Any]], path: str | Path, fmt: str | None = None) -> Path:
    path = Path(path)
    fmt = format_of(path, fmt)
    if fmt == "parquet":
        pa = _pyarrow()
        cols = _columns(rows)
        full = [{c: _parquet_cell(row.get(c)) for c in cols} for row in rows]
        pa.parquet.write_table(pa.Table.from_pylist(full), path)
    else:
        path.write_text(rows_to_text(rows, fmt))
    return path


def _parquet_cell(value: Any) -> Any:
    """Nested values as JSON text: a Parquet column holds one type."""
    return json.dumps(value) if isinstance(value, (dict, list)) else value
