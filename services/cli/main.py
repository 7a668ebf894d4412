"""`jobstream` (console script) and `python -m services.cli`: parse, run the command against the
scheduler, turn errors into messages and exit codes (listed in `jobstream --help`)."""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Sequence

from services.cli.console import Console
from services.cli.context import Context
from services.cli.parser import Command, build_parser
from services.client import (
    DeadlineExceeded,
    InvalidArgument,
    JobNotSucceeded,
    JobstreamClient,
    JobstreamError,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from services.common.config import ClientSettings

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INTERRUPTED = 130


_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")
_UNREACHABLE_WHY = (
    ("Connection refused", "connection refused: is it running there?"),
    ("Domain name not found", "no such host"),
    ("lookup", "the host name does not resolve"),
    ("Deadline Exceeded", "no answer in time"),
    ("timed out", "no answer in time"),
)


def _transport_message(error: JobstreamError, address: str) -> str | None:
    """A one-line message for an error gRPC's transport raised (no ErrorInfo reason), where its
    own text is a library's internals; None for errors the scheduler sent."""
    if error.reason:
        return None
    if isinstance(error, Unavailable):
        why = next((say for seen, say in _UNREACHABLE_WHY if seen in error.message), None)
        return (
            f"cannot reach the scheduler at {address}: {why or error.message} "
            "(--scheduler or JOBSTREAM_SCHEDULER_ADDRESS names it)"
        )
    if isinstance(error, ResourceExhausted) and (sizes := _TOO_LARGE.search(error.message)):
        size, limit = (int(number) for number in sizes.groups())
        return (
            f"the request is {size:,} bytes, over the scheduler's limit of {limit:,} bytes a "
            "message; a payload may be at most JOBSTREAM_MAX_PAYLOAD_BYTES as JSON"
        )
    if isinstance(error, DeadlineExceeded):
        return f"the scheduler at {address} did not answer in time"
    return None


def _report(console: Console, error: JobstreamError, address: str) -> int:
    if isinstance(error, InvalidArgument) and error.field_violations:
        console.error("invalid argument:")
        for violation in error.field_violations:
            console.err.write(f"  {violation.field}: {violation.description}\n")
        return EXIT_USAGE
    if isinstance(error, Unauthenticated):
        console.error(f"{error.message} (the CLI sends the API key in JOBSTREAM_API_KEY)")
        return EXIT_FAILURE
    if (message := _transport_message(error, address)) is not None:
        console.error(message)
        return EXIT_FAILURE
    console.error(str(error))
    if isinstance(error, InvalidArgument):
        return EXIT_USAGE
    return EXIT_NOT_FOUND if isinstance(error, NotFound) else EXIT_FAILURE


async def run(args: argparse.Namespace, console: Console, *, api_key: str | None = None) -> int:
    """Runs the parsed command with `api_key` (from JOBSTREAM_API_KEY); the exit code."""
    command: Command = args.command
    client = JobstreamClient(args.scheduler, api_key=api_key)
    try:
        async with client:
            return await command(Context(client, console, args.json), args)
    except JobstreamError as error:
        return _report(console, error, client.address)
    except JobNotSucceeded as error:
        console.error(str(error))
        return EXIT_FAILURE
    except TimeoutError:
        console.error("timed out")
        return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """The exit code of `jobstream ARGS`; usage errors exit 2 through argparse."""
    settings = ClientSettings()
    args = build_parser(settings.scheduler_address).parse_args(argv)
    console = Console.stdio()
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        return asyncio.run(run(args, console, api_key=api_key))
    except KeyboardInterrupt:
        if console.is_tty:
            console.clear_status()
        console.error("interrupted")
        return EXIT_INTERRUPTED
