"""HTTP request -> request proto, response proto -> JSON, with protobuf's JSON mapping.

Field names: JSON is written with protobuf's JSON names (lowerCamelCase: `pageToken`,
`nextPageToken`, `createTime`), as grpc-gateway and the AIPs do; requests may use either those or
the proto names (`page_token`). Enums are their names, 64-bit integers strings, timestamps
RFC 3339. Responses include scalar fields at their default (`"paused": false`, counts of 0).

A request is built from, in order: the JSON body (`body: "*"`: the whole request; `body: "job"`:
that field), the query parameters (every other field, repeated ones by repeating the parameter),
then the path variables, which win. An unknown field, in the body or the query, is a 400 naming
it; so is JSON that does not parse (with its line and column) or does not fit the field's type.

A body may nest arrays and objects at most `MAX_JSON_DEPTH` levels deep, its own object being the
first; a deeper one is a 400 naming `body`, found by a linear scan before the JSON is parsed.
Deeper input would fail further on: json.loads recurses once per level (a RecursionError past
about 990), protobuf's JSON parser stops at 100 messages (a payload about 48 levels deep) and its
binary decoder, the scheduler's too, at 100 (a CreateJob payload of objects 32 deep: each is a
Struct, a map entry and a Value). An integer past a double's range reads as infinity, which every
field refuses with a 400, rather than overflowing inside protobuf.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from starlette.requests import Request

from services.common import json_values
from services.gateway.bindings import Binding
from services.gateway.errors import ApiError

_JSON_TYPES = {"google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue"}
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
MAX_JSON_DEPTH = 32
# A JSON string, or an unterminated one up to the end: always matched once opened, so one scan
# is linear even for bodies full of escaped quotes.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Python ints of more digits may not fit a double (any `Value` number) nor any integer field.
_EXACT_DIGITS = 300


def _too_large(limit: int) -> ApiError:
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the request body is larger than {limit} bytes",
        reason="TOO_LARGE",
        http_status=413,
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _field(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    found = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
    if found is None:
        found = next((f for f in descriptor.fields if f.json_name == key), None)
    return found


def _plain_message(field: FieldDescriptor) -> Descriptor | None:
    """The type of a message field whose JSON is an object of its fields (not a well-known
    type); None for any other field."""
    message = field.message_type
    if message is None or message.full_name.startswith("google.protobuf."):
        return None
    return message


def _check_item(item: object, field: FieldDescriptor, message: Descriptor, path: str) -> None:
    if message.GetOptions().map_entry:
        value_type = _plain_message(message.fields_by_name["value"])
        if value_type is not None and isinstance(item, dict):
            for key, sub in item.items():
                check_known(sub, value_type, f"{path}.{key}")
    elif field.is_repeated and isinstance(item, list):
        for index, element in enumerate(item):
            check_known(element, message, f"{path}[{index}]")
    else:
        check_known(item, message, path)


def check_known(value: object, descriptor: Descriptor, where: str) -> None:
    """Raises a 400 naming the first key of `value` that is no field of `descriptor`."""
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        field = _field(descriptor, key)
        path = f"{where}.{key}" if where else str(key)
        if field is None:
            raise ApiError.bad_request(path, f"unknown field {key!r} in {descriptor.full_name}")
        message = _plain_message(field)
        if message is not None:
            _check_item(item, field, message, path)
        elif field.message_type is not None and field.message_type.full_name in _JSON_TYPES:
            inexact = json_values.inexact_int_path(item)
            if inexact is not None:
                raise ApiError.bad_request(path + inexact, json_values.INEXACT_INT)


def _nesting_depth(text: str) -> int:
    """How deep `text`'s arrays and objects nest, brackets in strings aside; for text that is not
    JSON, at least as deep as a parser gets before it fails. Linear, without recursion."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _check_depth(text: str) -> None:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:  # cannot nest deeper: skip the scan
        return
    depth = _nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ApiError.bad_request(
            "body",
            f"the request body nests arrays and objects {depth} levels deep; at most "
            f"{MAX_JSON_DEPTH} are allowed (the body's own object is one)",
        )


def _integer(digits: str) -> int | float:
    """A JSON integer; past `_EXACT_DIGITS` digits a float (infinity once past a double's range),
    so that protobuf refuses it with a ParseError or the scheduler as not finite, rather than
    overflowing in protobuf (OverflowError) or in int() (ValueError past 4,300 digits)."""
    return int(digits) if len(digits) <= _EXACT_DIGITS else float(digits)


def _parse_json(body: bytes) -> object:
    if not body.strip():
        return {}
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads does
        _check_depth(text)
        return json.loads(text, parse_int=_integer)
    except UnicodeDecodeError as error:
        raise ApiError.bad_request("body", f"the request body is not UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise ApiError.bad_request(
            "body",
            f"the request body is not valid JSON: {error.msg} "
            f"at line {error.lineno} column {error.colno}",
        ) from None


def _query_value(field: FieldDescriptor, values: Sequence[str]) -> object:
    def one(text: str) -> object:
        if field.type == FieldDescriptor.TYPE_BOOL:
            if text.lower() not in _BOOLS:
                raise ApiError.bad_request(field.json_name, f"{text!r} is not true or false")
            return _BOOLS[text.lower()]
        return text  # ParseDict reads numbers, enums and well-known types from strings

    if field.is_repeated:
        return [one(v) for v in values]
    return one(values[-1])


def _apply_query(
    request: dict[str, Any], binding: Binding, query: Mapping[str, Sequence[str]]
) -> None:
    descriptor = binding.method.input_type
    for key, values in query.items():
        field = _field(descriptor, key)
        bound = binding.path_fields | ({binding.body} if binding.body else set())
        if field is None or binding.body == "*" or field.name in bound:
            raise ApiError.bad_request(key, f"unknown query parameter {key!r}")
        if _plain_message(field) is not None:
            raise ApiError.bad_request(key, f"{key!r} cannot be given as a query parameter")
        request[field.name] = _query_value(field, values)


def _apply_path(request: dict[str, Any], binding: Binding, params: dict[str, str]) -> None:
    for variable in binding.variables:
        target = request
        for name in variable.field_path[:-1]:
            child = target.get(name)
            if not isinstance(child, dict):
                child = target[name] = {}
            target = child
        target[variable.field_path[-1]] = variable.value(params)


def to_request(
    binding: Binding,
    *,
    params: dict[str, str],
    query: Mapping[str, Sequence[str]],
    body: bytes,
    message: Message,
) -> None:
    """Fills `message` (an empty request of `binding`'s RPC) from the HTTP request's parts."""
    descriptor = binding.method.input_type
    request: dict[str, Any] = {}
    if binding.body:
        parsed = _parse_json(body)
        if not isinstance(parsed, dict):
            raise ApiError.bad_request("body", "the request body must be a JSON object")
        if binding.body == "*":
            check_known(parsed, descriptor, "")
            request = parsed
        else:
            body_type = _plain_message(descriptor.fields_by_name[binding.body])
            if body_type is not None:
                check_known(parsed, body_type, binding.body)
            request[binding.body] = parsed
    elif body.strip():
        raise ApiError.bad_request(
            "body", f"{binding.http_method} {binding.template} takes no body"
        )
    _apply_query(request, binding, query)
    _apply_path(request, binding, params)
    try:
        json_format.ParseDict(request, message)
    except json_format.ParseError as error:
        text = str(error).splitlines()[0]
        raise ApiError.bad_request("body", f"invalid request: {text}") from None


def to_json(message: Message) -> dict[str, Any]:
    """The response body: protobuf's JSON mapping with lowerCamelCase names, integral numbers
    as integers."""
    body = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    return cast(dict[str, Any], json_values.integral(body))
