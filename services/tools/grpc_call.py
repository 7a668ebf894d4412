"""A small grpcurl: lists, describes and calls any service of a server through its reflection API,
with JSON in and out. No generated code needed on the caller's side. Calls carry the API key in
JOBSTREAM_API_KEY (`authorization: Bearer`); listing and describing need none.

    python -m services.tools.grpc_call 127.0.0.1:50051 list
    python -m services.tools.grpc_call 127.0.0.1:50051 describe jobs.v1.JobService
    python -m services.tools.grpc_call 127.0.0.1:50051 call jobs.v1.JobService/CreateJob \\
        '{"parent": "queues/demo", "job": {"type": "hello", "payload": {"who": "you"}}}'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import grpc
from google.protobuf import descriptor_pool, json_format, message, message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from services.common.config import ClientSettings
from services.common.credentials import Metadata, credentials


def _method(pool: descriptor_pool.DescriptorPool, full_name: str) -> MethodDescriptor:
    service_name, _, method_name = full_name.partition("/")
    service = pool.FindServiceByName(service_name)
    method = service.methods_by_name.get(method_name)
    if method is None:
        raise SystemExit(f"{service_name} has no method {method_name!r}")
    return method


def _call(
    channel: grpc.Channel, method: MethodDescriptor, body: str, timeout: float, metadata: Metadata
) -> Iterator[message.Message]:
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    request = json_format.Parse(body or "{}", request_class())
    path = f"/{method.containing_service.full_name}/{method.name}"
    serialize, deserialize = request_class.SerializeToString, response_class.FromString
    if method.server_streaming:
        stream = channel.unary_stream(path, serialize, deserialize)
        yield from stream(request, timeout=timeout, metadata=metadata)
    else:
        unary = channel.unary_unary(path, serialize, deserialize)
        yield unary(request, timeout=timeout, metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="host:port of the server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list services")
    describe = sub.add_parser("describe", help="show a service's methods")
    describe.add_argument("service")
    call = sub.add_parser("call", help="call Service/Method with a JSON request")
    call.add_argument("method", help="for example jobs.v1.JobService/GetJob")
    call.add_argument("body", nargs="?", default="", help="JSON request; '-' reads stdin")
    call.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    args = parser.parse_args(argv)

    with grpc.insecure_channel(args.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        if args.command == "list":
            sys.stdout.write("\n".join(database.get_services()) + "\n")
        elif args.command == "describe":
            service = pool.FindServiceByName(args.service)
            for method in service.methods:
                stream = "stream " if method.server_streaming else ""
                line = f"{method.name}({method.input_type.full_name}) -> {stream}"
                sys.stdout.write(f"{line}{method.output_type.full_name}\n")
        else:
            body = sys.stdin.read() if args.body == "-" else args.body
            key = ClientSettings().api_key
            metadata = credentials(key.get_secret_value() if key else None)
            method = _method(pool, args.method)
            try:
                for response in _call(channel, method, body, args.timeout, metadata):
                    sys.stdout.write(json_format.MessageToJson(response) + "\n")
            except grpc.RpcError as error:
                sys.stderr.write(f"{error.code().name}: {error.details()}\n")
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
