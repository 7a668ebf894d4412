"""JSON values in and out of `google.protobuf.Value`, the type payloads, results and progress
data travel as.

A Value holds every number as a double, so `64` arrives as `64.0`. Every place a Value turns
back into JSON (the store, REST, SSE, the CLI, the Python client) goes through `plain` or
`integral`, so an integral number comes back as the integer it was sent as. Integers beyond
±2**53 have no exact double and are refused on the way in rather than rounded.

protobuf's json_format converts too, but it writes `64.0`, and it turns a Value with no kind
set (what a proto-loader client sends for a plain object) into null: here that is an error
naming where in the value it is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TypeAlias

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None

EXACT_INT = 2**53  # doubles hold every integer up to here exactly
UNSET_KIND = (
    "is a google.protobuf.Value with no kind set; set one of null_value, number_value, "
    "string_value, bool_value, struct_value or list_value (proto-loader clients: "
    "{structValue: {fields: {size: {numberValue: 64}}}}), or send plain JSON over REST"
)
INEXACT_INT = (
    f"is an integer beyond ±2**53 ({EXACT_INT}), which JSON numbers cannot carry exactly; "
    "send it as a string"
)


class BadValue(ValueError):
    """A value that is not JSON a Value can carry exactly. `path` is where inside it, as
    `.size`, `[2]`, `.items[0].id`; `reason` says what is wrong."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{path or 'the value'} {reason}")
        self.reason = reason
        self.path = path

    def under(self, step: str) -> BadValue:
        return BadValue(self.reason, step + self.path)


def _key_step(key: str) -> str:
    return f".{key}" if key.isidentifier() else f"[{json.dumps(key)}]"


def plain(value: struct_pb2.Value) -> JsonValue:
    """`value` as plain Python, integral numbers as int. Raises BadValue for a Value with no
    kind set, or a NaN or infinite number, anywhere inside it."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return _number(value.number_value)
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return plain_struct(value.struct_value)
    if kind == "list_value":
        items = []
        for index, item in enumerate(value.list_value.values):
            try:
                items.append(plain(item))
            except BadValue as error:
                raise error.under(f"[{index}]") from None
        return items
    if kind == "bool_value":
        return value.bool_value
    if kind == "null_value":
        return None
    raise BadValue(UNSET_KIND)


def plain_struct(struct: struct_pb2.Struct) -> dict[str, JsonValue]:
    """`struct` as a dict, as `plain` converts a Value."""
    result = {}
    for key, item in struct.fields.items():
        try:
            result[key] = plain(item)
        except BadValue as error:
            raise error.under(_key_step(key)) from None
    return result


def _number(number: float) -> int | float:
    if number.is_integer() and -EXACT_INT <= number <= EXACT_INT:
        return int(number)
    if not math.isfinite(number):
        raise BadValue("is NaN or infinite; JSON numbers must be finite")
    return number


def to_value(data: object) -> struct_pb2.Value:
    """`data` (dict, list, str, int, float, bool, None) as a Value. Raises BadValue for NaN,
    Infinity or an integer beyond ±2**53, TypeError for what JSON has no form of."""
    value = struct_pb2.Value()
    fill(value, data)
    return value


def fill(target: struct_pb2.Value, data: object) -> None:
    """Sets `target` (a Value field in place) to `data`, as `to_value` converts it."""
    if isinstance(data, Mapping):
        fill_struct(target.struct_value, data)
    elif isinstance(data, list | tuple):
        values = target.list_value
        values.SetInParent()
        for index, item in enumerate(data):
            try:
                fill(values.values.add(), item)
            except BadValue as error:
                raise error.under(f"[{index}]") from None
    else:
        _fill_scalar(target, data)


def _fill_scalar(target: struct_pb2.Value, data: object) -> None:
    if data is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):  # before int: True is an int too
        target.bool_value = data
    elif isinstance(data, int):
        if not -EXACT_INT <= data <= EXACT_INT:
            raise BadValue(INEXACT_INT)
        target.number_value = data
    elif isinstance(data, float):
        if not math.isfinite(data):
            raise BadValue("is NaN or infinite; JSON numbers must be finite")
        target.number_value = data
    elif isinstance(data, str):
        target.string_value = data
    else:
        raise TypeError(f"{type(data).__name__} is not a JSON value")


def fill_struct(target: struct_pb2.Struct, data: Mapping[str, object]) -> None:
    """Sets `target` (a Struct field in place) to the JSON object `data`."""
    target.SetInParent()
    fields = target.fields
    for key, item in data.items():
        if not isinstance(key, str):
            raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
        try:
            fill(fields[key], item)
        except BadValue as error:
            raise error.under(_key_step(key)) from None


def integral(data: object) -> object:
    """`data` (protobuf's JSON mapping of a message, or any JSON) with every integral float
    as an int: what `json_format.MessageToDict` writes as `64.0` comes back `64`."""
    if isinstance(data, float):
        return int(data) if data.is_integer() and -EXACT_INT <= data <= EXACT_INT else data
    if isinstance(data, dict):
        return {key: integral(item) for key, item in data.items()}
    if isinstance(data, list):
        return [integral(item) for item in data]
    return data


def inexact_int_path(data: object, path: str = "") -> str | None:
    """Where in parsed JSON an integer lies beyond ±2**53 (`.items[2].id`), or None."""
    if isinstance(data, int) and not isinstance(data, bool):
        return None if -EXACT_INT <= data <= EXACT_INT else path
    if isinstance(data, dict):
        for key, item in data.items():
            found = inexact_int_path(item, path + _key_step(key))
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found = inexact_int_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def dumps(data: object) -> str:
    """Compact JSON text, as the store keeps it."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def message_json(message: Message, indent: int | None = None) -> str:
    """`message` in protobuf's JSON mapping, as `json_format.MessageToJson` writes it but with
    integral numbers as integers."""
    return json.dumps(integral(json_format.MessageToDict(message)), indent=indent)
