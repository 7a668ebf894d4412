"""The gRPC server every jobstream service runs.

Every RPC gets an OpenTelemetry span, and every handler is wrapped by `rpc_guard` (errors as
`google.rpc.Status`, undecodable requests as INVALID_ARGUMENT, never INTERNAL). The server also
serves `grpc.health.v1` (every service SERVING until a graceful shutdown) and reflection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.trace import TracerProvider

from services.common import rpc_guard
from services.common.rpc_guard import Handler

T = TypeVar("T")

Registration = Callable[[grpc.aio.Server], None]
"""A generated `add_XServicer_to_server` bound to its servicer; see `registration`."""


def registration(add: Callable[[T, grpc.aio.Server], None], servicer: T) -> Registration:
    """Binds a generated `add_XServicer_to_server` to its servicer."""
    return functools.partial(add, servicer)


class _HandlerCollector:
    """Stands in for the server while a generated `add_XServicer_to_server` runs, capturing the
    method handlers it registers by service name, so they can be wrapped first."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Handler]] = {}

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[object, object]]
    ) -> None:
        """Ignored: the same handlers arrive by name in `add_registered_method_handlers`."""

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Handler]) -> None:
        self.services[service] = dict(handlers)


class _RegisteringServer(Protocol):
    """`grpc.aio.Server` as it is since grpcio 1.62 (the type stubs lack the method)."""

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, Handler]
    ) -> None: ...


def _collect(registrations: Sequence[Registration]) -> dict[str, dict[str, Handler]]:
    collector = _HandlerCollector()
    for register in registrations:
        before = len(collector.services)
        register(cast(grpc.aio.Server, collector))
        if len(collector.services) == before:
            raise RuntimeError(
                f"{register!r} registered no named method handlers: regenerate the code with "
                "grpcio-tools >= 1.62 (make protos)"
            )
    return collector.services


def _install(
    server: grpc.aio.Server,
    services: Mapping[str, Mapping[str, Handler]],
    gate: rpc_guard.Gate | None,
) -> None:
    for service, handlers in services.items():
        wrapped = {
            method: rpc_guard.guard_handler(f"/{service}/{method}", handler, gate)
            for method, handler in handlers.items()
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        cast(_RegisteringServer, server).add_registered_method_handlers(service, wrapped)


def address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


@dataclass(frozen=True)
class GrpcServer:
    """A built, bound server: `start()`, then `stop(grace)` for a graceful shutdown."""

    server: grpc.aio.Server
    health: HealthServicer
    port: int
    service_names: tuple[str, ...]

    async def start(self) -> None:
        await self.server.start()
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        """Reports NOT_SERVING, refuses new RPCs, lets running ones finish within `grace` seconds,
        then cancels the rest."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def build_server(
    registrations: Sequence[Registration],
    *,
    host: str,
    port: int,
    max_message_bytes: int,
    tracer_provider: TracerProvider | None = None,
    gate: rpc_guard.Gate | None = None,
) -> GrpcServer:
    """A server with the given services, health and reflection, bound to `host:port` (port 0 picks
    a free port; `GrpcServer.port` says which). `tracer_provider` defaults to the global one.
    `gate` admits every RPC of the services (health included; reflection describes only the
    public contract and is served to anyone).

    Raises RuntimeError when the address cannot be bound."""
    server = grpc.aio.server(
        # The instrumentation library is untyped; it returns a grpc.aio.ServerInterceptor.
        interceptors=[aio_server_interceptor(tracer_provider=tracer_provider)],  # type: ignore[no-untyped-call]
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a port in use is an error, not a silently shared port
        ],
    )
    health_servicer = HealthServicer()
    services = _collect(
        [
            *registrations,
            registration(health_pb2_grpc.add_HealthServicer_to_server, health_servicer),
        ]
    )
    _install(server, services, gate)
    names = tuple(name for name in services if name != health.SERVICE_NAME)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    where = address(host, port)
    bound = server.add_insecure_port(where)
    if bound == 0:
        raise RuntimeError(f"cannot listen on {where}")
    return GrpcServer(server, health_servicer, bound, names)
