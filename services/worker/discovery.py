"""Finds the handlers: imports the modules a worker is started with and collects the functions
`@job` marked in them."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import ModuleType

from services.worker.handler import Handler, handler_of


class DiscoveryError(Exception):
    """A module cannot be imported, two handlers claim one job type, or there is no handler."""


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise DiscoveryError(f"cannot import handler module {module!r}: {error}") from error


def handlers_in(modules: Iterable[ModuleType]) -> dict[str, Handler]:
    """Job type -> handler over every marked function defined in or imported into `modules`.
    The same function seen twice is one handler.

    Raises DiscoveryError when two functions claim one job type, naming both."""
    found: dict[str, Handler] = {}
    for module in modules:
        for value in list(vars(module).values()):
            handler = handler_of(value)
            if handler is None:
                continue
            earlier = found.get(handler.job_type)
            if earlier is not None and earlier.function is not handler.function:
                raise DiscoveryError(
                    f"job type {handler.job_type!r} has two handlers: "
                    f"{earlier.qualified_name} and {handler.qualified_name}"
                )
            found[handler.job_type] = handler
    return found


def discover(modules: Iterable[str]) -> dict[str, Handler]:
    """Imports `modules` (dotted names) and returns their handlers by job type.

    Raises DiscoveryError (import failure, duplicate job type, no handler at all)."""
    names = list(modules)
    handlers = handlers_in(_import(name) for name in names)
    if not handlers:
        raise DiscoveryError(f"no @job handlers in {', '.join(names) or 'no modules'}")
    return handlers


def describe(handlers: Mapping[str, Handler]) -> str:
    """The known job types, sorted, for messages."""
    return ", ".join(sorted(handlers)) or "none"
