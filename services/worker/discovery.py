"""Finds the handlers: imports the modules a worker is started with and collects the functions
`@job` marked in them, and the tasks of the taskiq brokers (`JobstreamBroker`) they hold."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import ModuleType

from services.worker.handler import Handler, handler_of
from services.worker.taskiq_broker import JobstreamBroker, task_handlers


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
        for handler in _marked(vars(module).values()):
            earlier = found.get(handler.job_type)
            if earlier is not None and earlier.origin is not handler.origin:
                raise DiscoveryError(
                    f"job type {handler.job_type!r} has two handlers: "
                    f"{earlier.qualified_name} and {handler.qualified_name}"
                )
            found[handler.job_type] = handler
    return found


def _marked(values: Iterable[object]) -> Iterable[Handler]:
    for value in list(values):
        if isinstance(value, JobstreamBroker):
            yield from task_handlers(value)
        elif (handler := handler_of(value)) is not None:
            yield handler


def brokers_of(handlers: Mapping[str, Handler]) -> list[JobstreamBroker]:
    """The taskiq brokers whose tasks are among `handlers` (the worker starts and stops them)."""
    found: dict[int, JobstreamBroker] = {}
    for handler in handlers.values():
        if handler.broker is not None:
            found[id(handler.broker)] = handler.broker
    return list(found.values())


def discover(modules: Iterable[str]) -> dict[str, Handler]:
    """Imports `modules` (dotted names) and returns their handlers by job type.

    Raises DiscoveryError (import failure, duplicate job type, no handler at all)."""
    names = list(modules)
    handlers = handlers_in(_import(name) for name in names)
    if not handlers:
        raise DiscoveryError(
            f"no @job handlers or taskiq tasks in {', '.join(names) or 'no modules'}"
        )
    return handlers


def describe(handlers: Mapping[str, Handler]) -> str:
    """The known job types, sorted, for messages."""
    return ", ".join(sorted(handlers)) or "none"
