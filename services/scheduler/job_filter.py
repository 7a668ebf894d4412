"""ListJobs' filter, an AIP-160 subset: terms joined by AND, each term one comparison or several
joined by OR (OR binds tighter, as AIP-160 has it).

    state = FAILED                      (or STATE_FAILED, as responses name it; also !=)
    type = "image.build"                (also !=)
    create_time >= "2026-12-01T00:00:00Z"     (also finish_time; >=, >, <, <=)
    tags:"nightly"                      (the job has the tag)
    metadata.user = "42"                (a metadata entry; != matches jobs without it too)
    error:"timed out"                   (in the error's type or message, any case)
    wait_reason = CONCURRENCY_LIMIT     (why a waiting job waits, Job.wait_reason's kind: a
                                        term of its own, = only; OR-ed kinds in one term)
    error_fingerprint = "5d41402abc4b2a76"    (the error's fingerprint, a failure group; also !=)
    worker = "host:4242:ab12"           (the worker of the current or last attempt; also !=)

Parentheses may enclose an OR-ed term: `(state = FAILED OR state = CANCELLED) AND tags:"x"`.
A term that is a single `state`, `type` or `create_time` comparison picks the index the page is
read from (`index`), exact and cheap. Every other term becomes a predicate (`predicates`) the
store checks job by job while it walks that index, a bounded number of jobs a page.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs.v1 import job_pb2
from services.common import names
from services.common.errors import InvalidFilter
from services.common.states import State
from services.scheduler.store.models import ListQuery

FIELDS = (
    "state",
    "type",
    "create_time",
    "finish_time",
    "tags",
    "metadata.<key>",
    "error",
    "error_fingerprint",
    "wait_reason",
    "worker",
)
_WAITING_STATES: tuple[Atom, ...] = tuple(
    {"k": "state", "v": state} for state in (State.SCHEDULED, State.BLOCKED, State.QUEUED)
)
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")  # store/fingerprint.py's
_TIMES = {"create_time": "ctime", "finish_time": "ftime"}
_TIME_OPERATORS = (">=", ">", "<", "<=")
_TOKEN = re.compile(
    r"""\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|!=|<=|>=|[=<>:()]|[^\s=!<>:()"']+|\S)"""
)
MAX_TIME_MS = 10**13 - 1  # the indexes hold 13-digit create times: 1970 to 2286


Atom = dict[str, object]  # one comparison, as list_jobs.lua reads it: {k, v[, op][, key][, not]}


def _bad(description: str) -> InvalidFilter:
    return InvalidFilter.field("filter", description)


@dataclass(frozen=True, slots=True)
class IndexTerms:
    """What narrows the index: a state, a type, and create times from (inclusive) and until
    (exclusive), in Unix ms."""

    state: State | None = None
    job_type: str | None = None
    created_from_ms: int | None = None
    created_until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class JobFilter:
    index: IndexTerms = field(default_factory=IndexTerms)
    # Terms checked job by job: each a list of atoms of which one must hold (see list_jobs.lua).
    predicates: tuple[tuple[Atom, ...], ...] = ()
    wait_reasons: frozenset[int] = frozenset()  # WaitReason kinds, worked out after the read

    def query(self, queue: str, **rest: Any) -> ListQuery:
        """The store's query of this filter over `queue`; `rest`: other ListQuery fields (or
        overrides of the filter's own)."""
        query = ListQuery(
            queue,
            state=self.index.state,
            job_type=self.index.job_type,
            created_from_ms=self.index.created_from_ms,
            created_until_ms=self.index.created_until_ms,
            predicates=self.predicates,
            wait_reasons=self.wait_reasons,
        )
        return dataclasses.replace(query, **rest)

    def fingerprint(self) -> str:
        """A canonical text of the filter, for page tokens."""
        return json.dumps(
            [dataclasses.asdict(self.index), self.predicates, sorted(self.wait_reasons)],
            sort_keys=True,
        )


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if match is None:  # cannot happen: the last alternative matches any character
            raise _bad(f"cannot read {text[position:]!r}")
        tokens.append(match[1])
        position = match.end()
    return tokens


def _quoted(name: str, value: str) -> str:
    if len(value) < 2 or value[0] not in "'\"" or value[-1] != value[0]:
        raise _bad(f'{name} takes a quoted string, as {name} = "a.b", not {value}')
    return value[1:-1]


def _time_ms(name: str, value: str) -> int:
    text = value[1:-1] if value[:1] in ("'", '"') else ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _bad(
            f"{name} takes a quoted RFC 3339 time with its zone, as {name} >= "
            f'"2026-12-01T00:00:00Z", not {value}'
        )
    return min(max(int(moment.timestamp() * 1000), 0), MAX_TIME_MS)


def _state(value: str) -> Atom:
    state = value.removeprefix("STATE_")
    if state not in State.__members__:
        states = ", ".join(State)
        raise _bad(f"state is one of {states} (or STATE_FAILED, ...; unquoted), not {value}")
    return {"k": "state", "v": state}


def _type(value: str) -> Atom:
    job_type = _quoted("type", value)
    if not names.JOB_TYPE.fullmatch(job_type):
        raise _bad(f'type {job_type!r} is not a valid job type (type = "a.b")')
    return {"k": "type", "v": job_type}


def _has(name: str, operator: str, value: str) -> Atom:
    if operator != ":":
        raise _bad(f'{name} takes `:` (has), as {name}:"text", not {operator!r}')
    text = _quoted(name, value)
    return {"k": "tag", "v": text} if name == "tags" else {"k": "error", "v": text.lower()}


def _time(name: str, operator: str, value: str) -> Atom:
    if operator not in _TIME_OPERATORS:
        raise _bad(f"{name} takes >=, >, < or <= and a time, not {operator!r}")
    return {"k": _TIMES[name], "op": operator, "v": _time_ms(name, value)}


def _metadata(name: str, value: str) -> Atom:
    key = name.removeprefix("metadata.")
    if not names.METADATA_KEY.fullmatch(key):
        raise _bad(f"metadata key {key!r} must match {names.METADATA_KEY.pattern}")
    return {"k": "meta", "key": key, "v": _quoted(name, value)}


def _wait_reason(operator: str, value: str) -> Atom:
    known = job_pb2.WaitReason.Kind.keys()[1:]  # not KIND_UNSPECIFIED
    kind = "KIND_" + value.removeprefix("KIND_")
    if operator != "=" or kind not in known:
        choices = ", ".join(k.removeprefix("KIND_") for k in known)
        raise _bad(f"wait_reason takes = and one of {choices} (unquoted), not {operator} {value}")
    return {"k": "wait", "v": job_pb2.WaitReason.Kind.Value(kind)}


def _fingerprint(value: str) -> Atom:
    fingerprint = _quoted("error_fingerprint", value)
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise _bad(f"error_fingerprint {fingerprint!r} is not a fingerprint (16 hex digits)")
    return {"k": "fp", "v": fingerprint}


def _worker(value: str) -> Atom:
    worker = _quoted("worker", value)
    if not names.WORKER_ID.fullmatch(worker):
        raise _bad(f"worker {worker!r} is not a worker id ({names.WORKER_ID.pattern})")
    return {"k": "worker", "v": worker}


def _atom(name: str, operator: str, value: str) -> Atom:
    """One comparison as the store's predicate atom. Raises InvalidFilter."""
    if name == "wait_reason":
        return _wait_reason(operator, value)
    if name in _TIMES:
        return _time(name, operator, value)
    if name in ("tags", "error"):
        return _has(name, operator, value)
    if name not in ("state", "type", "error_fingerprint", "worker") and not name.startswith(
        "metadata."
    ):
        raise _bad(f"unsupported field or token {name!r}; supported fields: {', '.join(FIELDS)}")
    if operator not in ("=", "!="):
        raise _bad(f"{name} takes = or !=, not {operator!r}")
    if name == "state":
        atom = _state(value)
    elif name == "type":
        atom = _type(value)
    elif name == "error_fingerprint":
        atom = _fingerprint(value)
    elif name == "worker":
        atom = _worker(value)
    else:
        atom = _metadata(name, value)
    # `!=` negates the atom: a job without the field (a metadata key) is then a match
    return {**atom, "not": True} if operator == "!=" else atom


class _Terms:
    """Reads the tokens into AND-ed terms, each a list of OR-ed atoms. A term may stand in
    parentheses, `(a OR b) AND c`, which reads as it would without them (OR binds tighter)."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.position, self.opened = tokens, 0, False
        self.terms: list[list[Atom]] = [[]]

    def _next(self, token: str) -> bool:
        """Whether `token` comes next; if so, it is taken."""
        if self.position < len(self.tokens) and self.tokens[self.position] == token:
            self.position += 1
            return True
        return False

    def _comparison(self) -> None:
        if not self.opened and self._next("("):
            self.opened = True
        name, operator, value = [*self.tokens[self.position : self.position + 3], "", "", ""][:3]
        if not name or name in ("AND", "OR", "(", ")"):
            raise _bad(f"a comparison must come where {name or 'the end'!r} is")
        if not operator or not value:
            raise _bad(f"{name} takes an operator and a value")
        self.terms[-1].append(_atom(name, operator, value))
        self.position += 3
        if self._next(")"):
            if not self.opened:
                raise _bad("')' closes no '('")
            self.opened = False

    def _joint(self) -> None:
        joint = self.tokens[self.position]
        if joint not in ("AND", "OR"):
            raise _bad(f"unexpected {joint!r}; join terms with AND or OR")
        if joint == "AND":
            if self.opened:
                raise _bad("AND inside parentheses: write (a OR b) AND c")
            self.terms.append([])
        self.position += 1
        if self.position == len(self.tokens):
            raise _bad(f"a term must follow {joint}")

    def read(self) -> list[list[Atom]]:
        while self.position < len(self.tokens):
            self._comparison()
            if self.position < len(self.tokens):
                self._joint()
        if self.opened:
            raise _bad("'(' is not closed")
        return [term for term in self.terms if term]


def parse_filter(text: str) -> JobFilter:
    """The filter `text` names. Raises InvalidFilter naming the unsupported field or token."""
    index: dict[str, object] = {}
    predicates: list[tuple[Atom, ...]] = []
    wait_reasons: set[int] = set()
    for term in _Terms(_tokens(text)).read():
        waits = [atom for atom in term if atom["k"] == "wait"]
        if waits and (len(waits) != len(term) or wait_reasons):
            raise _bad("wait_reason must be a term of its own (AND-ed), once")
        if waits:
            wait_reasons = {int(str(atom["v"])) for atom in waits}
            predicates.append(_WAITING_STATES)
        elif not (len(term) == 1 and _narrows(index, term[0])):
            predicates.append(tuple(term))
    return JobFilter(IndexTerms(**index), tuple(predicates), frozenset(wait_reasons))  # type: ignore[arg-type]


def _narrows(index: dict[str, object], atom: Atom) -> bool:
    """Takes a single-atom term into the index terms when it narrows the index; False when it
    has to be checked job by job instead."""
    kind = atom["k"]
    if atom.get("not"):
        return False
    if kind in ("state", "type"):
        slot = "state" if kind == "state" else "job_type"
        if slot in index:
            raise _bad(f"{kind} appears more than once (use OR within one term)")
        index[slot] = State(str(atom["v"])) if kind == "state" else atom["v"]
        return True
    if kind == "ctime":
        operator, ms = str(atom["op"]), int(str(atom["v"]))
        slot = "created_from_ms" if operator in (">=", ">") else "created_until_ms"
        if slot in index:
            bound = "lower" if slot == "created_from_ms" else "upper"
            raise _bad(f"create_time has more than one {bound} bound")
        index[slot] = ms + (1 if operator in (">", "<=") else 0)
        return True
    return False
