"""Loads the Lua scripts: each file is prefixed with the names of its keys (from
services/common/redis_keys.py), of the stored fields (store/fields.py) and the state machine
(services/common/states.py), all generated so the Lua cannot drift from them, and lib.lua; each
is registered once (EVALSHA, with a reload on NOSCRIPT by redis-py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources

from redis.commands.core import AsyncScript

from services.common import redis_keys
from services.common.redis_client import RedisClient
from services.common.redis_keys import QueueKeys
from services.common.states import TERMINAL, TRANSITIONS, Action, Transition
from services.scheduler.store.fields import lua_tables
from services.scheduler.store.models import REPORT_ACTIONS

DELETED = "DELETED"  # the destination of a move that deletes the job

_SCRIPT_NAMES = (
    "create_jobs",
    "promote_due",
    "apply_reports",
    "cancel_job",
    "retry_job",
    "delete_job",
    "delete_queue",
    "list_jobs",
    "save_schedule",
    "fire_schedule",
    "reap_expired",
    "expire_retained",
    "update_queue",
    "release_worker",
    "run_bulk_operation",
    "end_bulk_operation",
    "link_dependents",
    "resolve_dependencies",
)


# Libraries only some scripts are built with (after lib): a producer's Redis user may run
# create_jobs and lib's commands (deploy/redis/tenant-user.sh), and nothing else.
_EXTRA_LIBS = {
    "cancel_job": ("lib_cancel",),
    "fire_schedule": ("lib_cancel",),
    "retry_job": ("lib_retry",),
    "list_jobs": ("lib_match",),
    "run_bulk_operation": ("lib_cancel", "lib_retry", "lib_match", "lib_bulk"),
    "end_bulk_operation": ("lib_bulk",),
}


def source(name: str) -> str:
    """The text of `scripts/<name>.lua` as written (before the generated tables join it)."""
    return (resources.files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


def _lua_set(names: Iterable[str]) -> str:
    return "{" + ", ".join(f"{name} = true" for name in sorted(names)) + "}"


def key_names() -> str:
    """The Lua prelude that names the keys: K_<NAME> = KEYS[i] in QueueKeys.SCRIPT_KEYS order, the
    queue's prefix P, and F_<FAMILY> for the per-job, per-state and per-type families."""
    order = QueueKeys.SCRIPT_KEYS
    settings_suffix = len(QueueKeys("q").settings) - len(QueueKeys("q").prefix)
    lines = [f"local K_{name.upper()} = KEYS[{i}]" for i, name in enumerate(order, start=1)]
    lines.append(f"local P = string.sub(K_{order[0].upper()}, 1, -{settings_suffix + 1})")
    lines += [f"local F_{name} = '{family}'" for name, family in redis_keys.FAMILIES.items()]
    return "\n".join([*lines, ""])


def state_machine(transitions: Mapping[Action, Transition] = TRANSITIONS) -> str:
    """The Lua prelude every script starts with: TRANSITIONS[action] = {src = set, dst = set},
    REPORT_ACTIONS[report kind] = action, TERMINAL (the set of finished states) and DELETED."""
    rows = [
        f"  {action.value} = {{src = {_lua_set(s.value for s in t.sources)}, "
        f"dst = {_lua_set(DELETED if d is None else d.value for d in t.destinations)}}},"
        for action, t in transitions.items()
    ]
    kinds = ", ".join(f"{kind.value} = '{action.value}'" for kind, action in REPORT_ACTIONS.items())
    return "\n".join(
        [
            f"local DELETED = '{DELETED}'",
            "local TRANSITIONS = {",
            *rows,
            "}",
            f"local REPORT_ACTIONS = {{{kinds}}}",
            f"local TERMINAL = {_lua_set(state.value for state in TERMINAL)}",
            "",
        ]
    )


@dataclass(frozen=True)
class Scripts:
    create_jobs: AsyncScript
    promote_due: AsyncScript
    apply_reports: AsyncScript
    cancel_job: AsyncScript
    retry_job: AsyncScript
    delete_job: AsyncScript
    delete_queue: AsyncScript
    list_jobs: AsyncScript
    save_schedule: AsyncScript
    fire_schedule: AsyncScript
    reap_expired: AsyncScript
    expire_retained: AsyncScript
    update_queue: AsyncScript
    release_worker: AsyncScript
    run_bulk_operation: AsyncScript
    end_bulk_operation: AsyncScript
    link_dependents: AsyncScript
    resolve_dependencies: AsyncScript

    @classmethod
    def register(
        cls, redis: RedisClient, transitions: Mapping[Action, Transition] = TRANSITIONS
    ) -> Scripts:
        """The scripts, obeying `transitions` (another table only in a test of the checks)."""
        lib = "\n".join(
            [
                key_names() + lua_tables() + state_machine(transitions) + source("lib"),
                source("lib_flow"),
            ]
        )
        return cls(
            **{
                name: redis.register_script(
                    "\n".join(
                        [lib, *(source(extra) for extra in _EXTRA_LIBS.get(name, ())), source(name)]
                    )
                )
                for name in _SCRIPT_NAMES
            }
        )
