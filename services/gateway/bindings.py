"""The REST surface, read from the protos: every public RPC's `google.api.http` binding.

A path template such as `/v1/{name=queues/*/jobs/*}:cancel` becomes the route
`/v1/queues/{queue}/jobs/{job}:cancel`: each `*` of a variable's pattern is one path segment, named
for the collection before it (`queues/*` -> `queue`), and the field (`name`) is rebuilt from the
pattern with the segments filled in (`queues/q1/jobs/j1`). So a resource name's slashes are plain
path separators, never percent-encoded, and OpenAPI clients see one parameter per segment.

Only unary RPCs are routed here; server-streaming ones (WatchJob, WatchQueue) are served as
Server-Sent Events by `services/gateway/sse.py`. WorkerService is internal and never bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor

from jobs.v1 import (
    auth_service_pb2,
    bulk_operation_service_pb2,
    job_service_pb2,
    queue_service_pb2,
    schedule_service_pb2,
    webhook_service_pb2,
    worker_registry_service_pb2,
)

PUBLIC_FILES: tuple[FileDescriptor, ...] = (
    auth_service_pb2.DESCRIPTOR,
    bulk_operation_service_pb2.DESCRIPTOR,
    job_service_pb2.DESCRIPTOR,
    queue_service_pb2.DESCRIPTOR,
    schedule_service_pb2.DESCRIPTOR,
    webhook_service_pb2.DESCRIPTOR,
    worker_registry_service_pb2.DESCRIPTOR,
)
INTERNAL_SERVICES = frozenset({"jobs.v1.WorkerService"})

_VARIABLE = re.compile(r"\{(?P<field>[a-z_][a-z0-9_.]*)(?:=(?P<pattern>[^}]*))?\}")
_LITERAL = re.compile(r"[A-Za-z0-9_.~-]+")


class BindingError(Exception):
    """A `google.api.http` option this gateway cannot serve (a proto change needs gateway work)."""


@dataclass(frozen=True, slots=True)
class PathVariable:
    """One `{field=pattern}` of a template: the request field it fills and its segments."""

    field_path: tuple[str, ...]  # ("queue", "name") for `{queue.name=queues/*}`
    pattern: str  # "queues/*"; "*" when the template gives none
    segments: tuple[str, ...]  # route parameter names, one per `*`: ("queue",)

    def value(self, params: dict[str, str]) -> str:
        """The field's value, the pattern with each `*` replaced by its path segment."""
        parts = iter(self.segments)
        return "/".join(params[next(parts)] if p == "*" else p for p in self.pattern.split("/"))


@dataclass(frozen=True, slots=True)
class Binding:
    """One HTTP binding of one RPC."""

    method: MethodDescriptor
    http_method: str  # "GET", "POST", ...
    template: str  # as written in the proto
    route_path: str  # Starlette path: "/v1/queues/{queue}/jobs/{job}:cancel"
    variables: tuple[PathVariable, ...]
    body: str  # "" (none), "*" (the whole request) or a top-level field's name

    @property
    def service(self) -> str:
        return self.method.containing_service.full_name

    @property
    def rpc_path(self) -> str:
        """The gRPC method path: `/jobs.v1.JobService/CreateJob`."""
        return f"/{self.service}/{self.method.name}"

    @property
    def operation_id(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}"

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming or self.method.client_streaming)

    @property
    def path_fields(self) -> frozenset[str]:
        """Top-level request fields bound (wholly or partly) by the path."""
        return frozenset(v.field_path[0] for v in self.variables)


def _segment_name(collection: str, taken: set[str]) -> str:
    base = collection[:-1] if collection.endswith("s") else f"{collection}_id"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def _variable(match: re.Match[str], template: str, taken: set[str]) -> tuple[PathVariable, str]:
    field_path = tuple(match["field"].split("."))
    pattern = match["pattern"] or "*"
    parts = pattern.split("/")
    segments: list[str] = []
    route: list[str] = []
    for index, part in enumerate(parts):
        if part == "*":
            collection = parts[index - 1] if index else field_path[-1] + "s"
            segments.append(_segment_name(collection, taken))
            route.append("{" + segments[-1] + "}")
        elif _LITERAL.fullmatch(part):
            route.append(part)
        else:  # "**" and other forms no public RPC uses
            raise BindingError(f"unsupported path pattern {pattern!r} in {template!r}")
    return PathVariable(field_path, pattern, tuple(segments)), "/".join(route)


def parse_template(template: str) -> tuple[str, tuple[PathVariable, ...]]:
    """A template's Starlette route path and its variables."""
    taken: set[str] = set()
    variables: list[PathVariable] = []
    route: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(template):
        route.append(template[position : match.start()])
        variable, text = _variable(match, template, taken)
        variables.append(variable)
        route.append(text)
        position = match.end()
    route.append(template[position:])
    return "".join(route), tuple(variables)


def _rules(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    yield from rule.additional_bindings


def _binding(method: MethodDescriptor, rule: http_pb2.HttpRule) -> Binding:
    kind = rule.WhichOneof("pattern")
    if kind is None or kind == "custom":
        raise BindingError(f"{method.full_name}: no supported HTTP verb")
    template = str(getattr(rule, kind))
    route_path, variables = parse_template(template)
    if rule.body not in ("", "*") and rule.body not in method.input_type.fields_by_name:
        raise BindingError(f"{method.full_name}: body {rule.body!r} is not a request field")
    return Binding(method, kind.upper(), template, route_path, variables, rule.body)


def load_bindings(files: Sequence[FileDescriptor] = PUBLIC_FILES) -> tuple[Binding, ...]:
    """Every HTTP binding of every public service's RPCs, streaming ones included."""
    found: list[Binding] = []
    for file in files:
        for service in file.services_by_name.values():
            if service.full_name in INTERNAL_SERVICES:
                continue
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    raise BindingError(f"{method.full_name} has no google.api.http binding")
                rule = options.Extensions[annotations_pb2.http]
                found.extend(_binding(method, r) for r in _rules(rule))
    return tuple(found)


def unary(bindings: Sequence[Binding]) -> tuple[Binding, ...]:
    """The bindings this module's routes serve, verb routes first (`.../{job}:cancel` must be
    tried before `.../{job}`, whose segment would otherwise swallow the `:cancel`)."""
    chosen = [b for b in bindings if not b.streaming]
    return tuple(sorted(chosen, key=lambda b: ":" not in b.template.rsplit("}", 1)[-1]))


def streaming(bindings: Sequence[Binding]) -> tuple[Binding, ...]:
    """The server-streaming bindings, served as Server-Sent Events by `sse.py`."""
    return tuple(b for b in bindings if b.streaming)
