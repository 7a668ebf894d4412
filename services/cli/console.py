"""Where the CLI writes: stdout for what was asked for, stderr for errors and notes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

CLEAR_LINE = "\r\x1b[2K"


@dataclass
class Console:
    """Output streams and whether stdout is a terminal (live redraws) or a pipe (one line per
    fact)."""

    out: TextIO
    err: TextIO
    is_tty: bool

    @classmethod
    def stdio(cls) -> Console:
        return cls(out=sys.stdout, err=sys.stderr, is_tty=sys.stdout.isatty())

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def lines(self, texts: list[str]) -> None:
        for text in texts:
            self.out.write(text + "\n")
        self.out.flush()

    def status(self, text: str) -> None:
        """Replaces the terminal's current line with `text` (no newline): a live status."""
        self.out.write(CLEAR_LINE + text)
        self.out.flush()

    def clear_status(self) -> None:
        self.out.write(CLEAR_LINE)
        self.out.flush()

    def error(self, text: str) -> None:
        self.err.write(f"jobstream: {text}\n")
        self.err.flush()
