"""`jobstream` (console script) and `python -m services.cli`: parse, run the command against the
scheduler, turn errors into messages and exit codes (listed in `jobstream --help`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from services.cli.console import Console
from services.cli.context import Context
from services.cli.parser import Command, build_parser
from services.client import (
    InvalidArgument,
    JobNotSucceeded,
    JobstreamClient,
    JobstreamError,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from services.common.config import ClientSettings

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INTERRUPTED = 130


def _report(console: Console, error: JobstreamError) -> int:
    if isinstance(error, InvalidArgument) and error.field_violations:
        console.error("invalid argument:")
        for violation in error.field_violations:
            console.err.write(f"  {violation.field}: {violation.description}\n")
        return EXIT_USAGE
    if isinstance(error, Unauthenticated):
        console.error(f"{error.message} (the CLI sends the API key in JOBSTREAM_API_KEY)")
        return EXIT_FAILURE
    if isinstance(error, Unavailable) and not error.reason:
        console.error(f"cannot reach the scheduler: {error.message}")
        return EXIT_FAILURE
    console.error(str(error))
    if isinstance(error, InvalidArgument):
        return EXIT_USAGE
    return EXIT_NOT_FOUND if isinstance(error, NotFound) else EXIT_FAILURE


async def run(args: argparse.Namespace, console: Console, *, api_key: str | None = None) -> int:
    """Runs the parsed command with `api_key` (from JOBSTREAM_API_KEY); the exit code."""
    command: Command = args.command
    try:
        async with JobstreamClient(args.scheduler, api_key=api_key) as client:
            return await command(Context(client, console, args.json), args)
    except JobstreamError as error:
        return _report(console, error)
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
