"""Comparing JSON with number types: `64` sent must not come back as `64.0`."""

from __future__ import annotations


def exact(data: object) -> object:
    """`data` with each number tagged by its type, so that 64 and 64.0 compare unequal."""
    if isinstance(data, dict):
        return {key: exact(item) for key, item in data.items()}
    if isinstance(data, list):
        return [exact(item) for item in data]
    if isinstance(data, int | float) and not isinstance(data, bool):
        return (type(data).__name__, data)
    return data
