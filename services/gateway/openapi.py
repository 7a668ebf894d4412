"""The OpenAPI 3.1 document of the REST API, generated from the same bindings the routes come from
and from the message descriptors (no maintained generator is installable: see
shared/design/toolchain-notes.md), and `/docs`, a self-contained page listing the operations
(no CDN assets, so it works offline)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services.common import names
from services.gateway.bindings import Binding, streaming, unary

Schema = dict[str, Any]
_REF = "#/components/schemas/"
_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON writes 64-bit integers as strings
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "description": "Seconds with an s: `1.5s`."},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated paths."},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
}
ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status."},
                "status": {"type": "string", "description": "The gRPC code's name."},
                "message": {"type": "string"},
                "reason": {"type": "string", "description": "google.rpc.ErrorInfo reason."},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                "fieldViolations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "description": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


class _Schemas:
    """Component schemas, one per message reached from the routed RPCs."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {"Error": ERROR_SCHEMA}

    def message(self, descriptor: Descriptor) -> Schema:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.components:
            self.components[descriptor.full_name] = {}  # placeholder: recursion ends here
            properties = {f.json_name: self.field(f) for f in descriptor.fields}
            self.components[descriptor.full_name] = {"type": "object", "properties": properties}
        return {"$ref": _REF + descriptor.full_name}

    def single(self, field: FieldDescriptor) -> Schema:
        if field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        if field.message_type is not None:
            return self.message(field.message_type)
        return dict(_SCALARS[field.type])

    def field(self, field: FieldDescriptor) -> Schema:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            schema: Schema = {
                "type": "object",
                "additionalProperties": self.single(entry.fields_by_name["value"]),
            }
        elif field.is_repeated:
            schema = {"type": "array", "items": self.single(field)}
        else:
            schema = self.single(field)
        behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        return schema


# The id formats the scheduler accepts (services/common/names.py), so a client generator, or a
# fuzzer, can tell a well-formed id from a malformed one before calling.
_SEGMENT_PATTERNS = {
    "queue": names.QUEUE_ID.pattern,
    "job": names.JOB_ID.pattern,
    "worker": names.WORKER_ID.pattern,
    "apiKey": names.API_KEY_ID.pattern,
}


def _segment_schema(segment: str) -> Schema:
    pattern = _SEGMENT_PATTERNS.get(segment)
    return {"type": "string"} if pattern is None else {"type": "string", "pattern": f"^{pattern}$"}


def _parameters(binding: Binding, schemas: _Schemas) -> list[Schema]:
    params: list[Schema] = []
    for variable in binding.variables:
        for segment in variable.segments:
            params.append(
                {
                    "name": segment,
                    "in": "path",
                    "required": True,
                    "description": f"A segment of `{'.'.join(variable.field_path)}` "
                    f"({variable.pattern}).",
                    "schema": _segment_schema(segment),
                }
            )
    if binding.body == "*":
        return params
    taken = binding.path_fields | {binding.body}
    for field in binding.method.input_type.fields:
        if field.name in taken or (
            field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN
        ):
            continue
        params.append({"name": field.json_name, "in": "query", "schema": schemas.field(field)})
    return params


def _request_body(binding: Binding, schemas: _Schemas) -> Schema:
    request = binding.method.input_type
    if binding.body == "*":
        properties = {
            f.json_name: schemas.field(f)
            for f in request.fields
            if f.name not in binding.path_fields
        }
        schema: Schema = {"type": "object", "properties": properties}
    else:
        schema = schemas.field(request.fields_by_name[binding.body])
    return {"required": binding.body != "*", "content": {"application/json": {"schema": schema}}}


def _operation(binding: Binding, schemas: _Schemas) -> Schema:
    operation: Schema = {
        "operationId": binding.operation_id,
        "tags": [binding.method.containing_service.name],
        "summary": f"{binding.method.name} ({binding.rpc_path})",
        "parameters": _parameters(binding, schemas),
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {"schema": schemas.message(binding.method.output_type)}
                },
            },
            "default": {
                "description": "An error, with its reason and field violations.",
                "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}},
            },
        },
    }
    if binding.body:
        operation["requestBody"] = _request_body(binding, schemas)
    return operation


def openapi_document(bindings: Sequence[Binding]) -> Schema:
    """The OpenAPI 3.1 document of the unary bindings (the streaming ones are listed in
    `x-jobstream-sse`: they are served as text/event-stream)."""
    schemas = _Schemas()
    paths: dict[str, Schema] = {}
    for binding in unary(bindings):
        item = paths.setdefault(binding.route_path, {})
        item[binding.http_method.lower()] = _operation(binding, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobstream REST API",
            "version": "v1",
            "description": "Generated from the google.api.http bindings of protos/jobs/v1. "
            "JSON uses protobuf's JSON mapping with lowerCamelCase field names. Every "
            "operation needs `Authorization: Bearer <API key>`; the watch streams also take "
            "`?access_token=<watch token>` (POST /v1/watchTokens).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
        "x-jobstream-sse": [
            {"method": b.http_method, "path": b.route_path, "rpc": b.rpc_path}
            for b in streaming(bindings)
        ],
    }


def docs_page(document: Schema) -> str:
    """A self-contained HTML page listing every operation of `document`."""
    rows = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation['operationId'])}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(document['info']['title'])}</title></head><body>"
        f"<h1>{html.escape(document['info']['title'])}</h1>"
        "<p>The machine-readable document: <a href='/openapi.json'>/openapi.json</a> "
        "(load it into any OpenAPI viewer or client generator).</p>"
        "<table><thead><tr><th>Method</th><th>Path</th><th>Operation</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>"
    )
