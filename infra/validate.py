"""Row validators for the contracts in ``infra.schemas``.

pyarrow's own conversion errors say *that* a value is wrong but not *where*; these validators
name the row (index and id) and the dotted field path, e.g. ``row 3 (clip_id=ab12): field
'pred_turns[1].end': expected float, got str 'x'``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from infra.schemas import MODES, SCHEMA_VERSION, SOURCES, SPLITS


class SchemaError(ValueError):
    """A row that breaks a data contract; the message names the row and the field."""


_ID_FIELDS = ("clip_id", "sample_id", "prediction_id", "quarantine_id")
_ENUMS: dict[str, Callable[[], Sequence[str]]] = {
    "source": lambda: SOURCES, "split": lambda: SPLITS, "mode": lambda: MODES,
}


def register_enum(field_name: str, allowed: Callable[[], Sequence[str]]) -> None:
    """Validate ``field_name`` against ``allowed()``, for value sets owned by a higher layer: the task
    registry (``eval.tasks.registry``) registers ``task`` here, so a new task needs no edit in infra."""
    _ENUMS[field_name] = allowed


def _check_type(value: Any, tp: pa.DataType, path: str) -> str | None:
    """None if ``value`` fits ``tp``, else a message naming ``path``."""
    if value is None:
        return None  # nullability is checked per top-level field
    if pa.types.is_string(tp):
        return None if isinstance(value, str) else f"field '{path}': expected str, got {type(value).__name__} {value!r:.40}"
    if pa.types.is_boolean(tp):
        return None if isinstance(value, bool) else f"field '{path}': expected bool, got {type(value).__name__}"
    if pa.types.is_integer(tp):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"field '{path}': expected int, got {type(value).__name__} {value!r:.40}"
    if pa.types.is_floating(tp):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"field '{path}': expected float, got {type(value).__name__} {value!r:.40}"
        if isinstance(value, float) and math.isnan(value):
            return f"field '{path}': NaN is not allowed"
        return None
    if pa.types.is_list(tp) or pa.types.is_large_list(tp):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
            return f"field '{path}': expected a list, got {type(value).__name__}"
        for i, item in enumerate(value):
            if item is None:
                return f"field '{path}[{i}]': null list item"
            err = _check_type(item, tp.value_type, f"{path}[{i}]")
            if err:
                return err
        return None
    if pa.types.is_struct(tp):
        if not isinstance(value, Mapping):
            return f"field '{path}': expected a record, got {type(value).__name__}"
        names = {tp.field(i).name for i in range(tp.num_fields)}
        extra = set(value) - names
        if extra:
            return f"field '{path}': unknown keys {sorted(extra)}"
        for i in range(tp.num_fields):
            f = tp.field(i)
            err = _check_type(value.get(f.name), f.type, f"{path}.{f.name}")
            if err:
                return err
        return None
    return None


def _semantic_errors(row: Mapping[str, Any]) -> Iterable[str]:
    """Rules the types cannot express: enums, interval order, normalized boxes."""
    for key, provider in _ENUMS.items():
        allowed = provider()
        if key in row and row[key] is not None and row[key] not in allowed:
            yield f"field '{key}': {row[key]!r} is not one of {list(allowed)}"
    if "start_s" in row and "end_s" in row and row["start_s"] is not None and row["end_s"] is not None:
        if row["end_s"] <= row["start_s"]:
            yield f"field 'end_s': {row['end_s']} is not after start_s {row['start_s']}"
        if row["start_s"] < 0:
            yield f"field 'start_s': negative time {row['start_s']}"
    for col in ("gt_turns", "pred_turns", "pred_speech", "pred_transcript", "answer_intervals"):
        for i, seg in enumerate(row.get(col) or []):
            if seg["end"] < seg["start"]:
                yield f"field '{col}[{i}].end': {seg['end']} is before start {seg['start']}"
    for col in ("gt_face_tracks", "pred_face_tracks"):
        for i, track in enumerate(row.get(col) or []):
            for j, box in enumerate(track.get("boxes") or []):
                for k in ("x1", "y1", "x2", "y2"):
                    v = box[k]
                    if not -1e-3 <= v <= 1 + 1e-3:
                        yield f"field '{col}[{i}].boxes[{j}].{k}': {v} is outside the normalized range [0, 1]"
                        break
    for col in ("gt_overlap_ratio", "pred_overlap_ratio"):
        v = row.get(col)
        if v is not None and not 0.0 <= v <= 1.0:
            yield f"field '{col}': {v} is outside [0, 1]"


def validate_row(row: Mapping[str, Any], schema: pa.Schema, index: int = 0) -> None:
    """Raise SchemaError naming row ``index`` and the first offending field."""
    rid = next((f"{k}={row[k]}" for k in _ID_FIELDS if isinstance(row, Mapping) and row.get(k)), None)
    where = f"row {index}" + (f" ({rid})" if rid else "")
    if not isinstance(row, Mapping):
        raise SchemaError(f"{where}: expected a mapping, got {type(row).__name__}")
    unknown = set(row) - set(schema.names)
    if unknown:
        raise SchemaError(f"{where}: unknown fields {sorted(unknown)}")
    for field in schema:
        value = row.get(field.name)
        if value is None:
            if not field.nullable:
                raise SchemaError(f"{where}: field '{field.name}' is required")
            continue
        err = _check_type(value, field.type, field.name)
        if err:
            raise SchemaError(f"{where}: {err}")
    version = row.get("schema_version")
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise SchemaError(f"{where}: field 'schema_version': {version!r} is incompatible with {SCHEMA_VERSION}")
    for err in _semantic_errors(row):
        raise SchemaError(f"{where}: {err}")


def validate_rows(rows: Iterable[Mapping[str, Any]], schema: pa.Schema) -> int:
    n = 0
    for i, row in enumerate(rows):
        validate_row(row, schema, i)
        n += 1
    return n


def to_table(rows: list[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Validate, fill ``schema_version`` where absent, and build a table in the contract's schema."""
    filled = [{"schema_version": SCHEMA_VERSION, **r} for r in rows]
    validate_rows(filled, schema)
    return pa.Table.from_pylist(filled, schema=schema)


def validate_table(table: pa.Table, schema: pa.Schema) -> int:
    """Check a table read back from storage: columns and types, then every row."""
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise SchemaError(f"table is missing fields {missing}")
    return validate_rows(table.select(schema.names).to_pylist(), schema)
