"""Typed in-memory tables parsed from uploaded CSV files, without pandas."""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from shared.contracts.base import FeatureValue

if TYPE_CHECKING:
    from _csv import Reader

ColumnKind = Literal["integer", "number", "boolean", "text", "empty"]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}
_INT64_LIMIT = 2**63


class InvalidDataset(ValueError):
    """The data cannot be used; the message tells the uploader what to fix."""


@dataclass(frozen=True)
class TabularData:
    """Columns of equal length, each holding values of one type (or None for missing)."""

    columns: dict[str, list[FeatureValue]]

    def __post_init__(self) -> None:
        lengths = {len(values) for values in self.columns.values()}
        if len(lengths) > 1:
            raise InvalidDataset(f"columns have different lengths: {sorted(lengths)}")

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    @property
    def row_count(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def rows(self) -> Iterator[dict[str, FeatureValue]]:
        """Row-wise view, for code that handles one record at a time."""
        names = self.column_names
        for values in zip(*self.columns.values(), strict=True):
            yield dict(zip(names, values, strict=True))

    def column_kind(self, name: str) -> ColumnKind:
        """The one type a column holds; mixed or non-finite columns are rejected."""
        values = self._column(name)
        types = {type(value) for value in values if value is not None}
        if not types:
            return "empty"
        if types == {bool}:
            return "boolean"
        if types == {str}:
            return "text"
        if types == {int}:
            return "integer"
        if types <= {int, float}:
            if not all(math.isfinite(value) for value in values if isinstance(value, float)):
                raise InvalidDataset(f"column {name!r} holds a non-finite number (NaN or inf)")
            return "number"
        found = ", ".join(sorted(t.__name__ for t in types))
        raise InvalidDataset(f"column {name!r} mixes value types: {found}")

    def feature_matrix(self, names: Sequence[str]) -> NDArray[np.float64]:
        """Numeric columns as a float matrix: booleans become 0/1, missing values NaN."""
        matrix = np.empty((self.row_count, len(names)), dtype=np.float64)
        for index, name in enumerate(names):
            if self.column_kind(name) == "text":
                raise InvalidDataset(f"column {name!r} holds text, not numbers")
            matrix[:, index] = np.array(self.columns[name], dtype=np.float64)
        return matrix

    def _column(self, name: str) -> list[FeatureValue]:
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidDataset(f"no column named {name!r}") from None


def parse_csv(data: bytes, *, max_rows: int = 1_000_000) -> TabularData:
    """Parse a UTF-8 CSV file with a header row, typing each column from its values."""
    if not data.strip():
        raise InvalidDataset("the file is empty")
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        names = _read_header(reader)
        rows, lines = _read_rows(reader, len(names), max_rows)
    except csv.Error as exc:
        raise InvalidDataset(f"line {reader.line_num}: malformed CSV ({exc})") from exc
    if not rows:
        raise InvalidDataset("the file has a header but no data rows")
    cells_by_column = zip(*rows, strict=True)
    return TabularData(
        {
            name: _typed_column(name, cells, lines)
            for name, cells in zip(names, cells_by_column, strict=True)
        }
    )


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidDataset(
            f"the file is not UTF-8 text: invalid byte 0x{data[exc.start]:02x} on line {line}"
        ) from None


def _read_header(reader: Reader) -> list[str]:
    header = next((row for row in reader if row), None)
    if header is None:
        raise InvalidDataset("no header row with column names")
    names = [cell.strip() for cell in header]
    if all(_NUMBER.fullmatch(name) for name in names):
        raise InvalidDataset(
            "no header row: the first line holds only numbers; add a line of column names"
        )
    first_seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name:
            raise InvalidDataset(f"column {position} has a blank name in the header")
        if name in first_seen:
            raise InvalidDataset(
                f"duplicate column name {name!r} (columns {first_seen[name]} and {position})"
            )
        first_seen[name] = position
    return names


def _read_rows(reader: Reader, width: int, max_rows: int) -> tuple[list[list[str]], list[int]]:
    """The data rows and the line each one ends on, for error messages."""
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            raise InvalidDataset(
                f"line {reader.line_num}: expected {width} fields as in the header,"
                f" found {len(row)}"
            )
        if len(rows) == max_rows:
            raise InvalidDataset(f"too many rows: the limit is {max_rows:,}")
        rows.append(row)
        lines.append(reader.line_num)
    return rows, lines


def _typed_column(name: str, raw: Sequence[str], lines: Sequence[int]) -> list[FeatureValue]:
    """Type a column as integers, numbers, booleans or text; empty cells become None."""
    cells = [cell.strip() for cell in raw]
    present = [cell for cell in cells if cell]
    if not present:
        return [None] * len(cells)
    if all(_INTEGER.fullmatch(cell) for cell in present):
        integers: list[FeatureValue] = [int(cell) if cell else None for cell in cells]
        if all(abs(value) < _INT64_LIMIT for value in integers if isinstance(value, int)):
            return integers
    if all(_NUMBER.fullmatch(cell) for cell in present):
        return _float_column(name, cells, lines)
    if all(cell.lower() in _BOOLEANS for cell in present):
        return [_BOOLEANS[cell.lower()] if cell else None for cell in cells]
    return [cell or None for cell in cells]


def _float_column(name: str, cells: Sequence[str], lines: Sequence[int]) -> list[FeatureValue]:
    values: list[FeatureValue] = []
    for cell, line in zip(cells, lines, strict=True):
        if not cell:
            values.append(None)
            continue
        value = float(cell)
        if not math.isfinite(value):
            raise InvalidDataset(
                f"line {line}, column {name!r}: {cell} is too large for a 64-bit float"
            )
        values.append(value)
    return values
