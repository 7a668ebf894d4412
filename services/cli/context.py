"""What every command gets: the client, the console, and whether to print JSON."""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message

from services.cli.console import Console
from services.client import JobstreamClient
from services.common import json_values


@dataclass(frozen=True)
class Context:
    client: JobstreamClient
    console: Console
    json: bool

    def now(self) -> datetime:
        return datetime.now(UTC)

    def print_message(self, message: Message) -> None:
        """The message as protobuf JSON (field names in lowerCamelCase, as the JSON mapping has
        them), integral numbers as integers."""
        self.console.line(json_values.message_json(message, indent=2))

    def print_item(self, message: Message, lines: Callable[[], list[str]]) -> int:
        """One resource: `message` as JSON, else its human `lines`. Returns the exit code, 0."""
        if self.json:
            self.print_message(message)
        else:
            self.console.lines(lines())
        return 0

    def print_list(
        self, response: Message, found: Sized, *, none: str, table: Callable[[], list[str]]
    ) -> int:
        """A list command's output: `response` as JSON, `none` when nothing was found, else
        the `table` lines. Returns the exit code, 0."""
        if self.json:
            self.print_message(response)
        elif not found:
            self.console.line(none)
        else:
            self.console.lines(table())
        return 0
