"""The browser tests' Chromium: Debian's package, launched by path (Playwright cannot download a
browser here) by the `browser` fixture of tests/gateway/conftest.py."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
]
# Every wait in the page is bounded; an event normally arrives in milliseconds.
WAIT_MS = 5_000
