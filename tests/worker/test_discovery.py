"""Discovery: the handler modules a worker is started with, and the `@job` functions in them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from services.worker import JobContext, job
from services.worker.discovery import DiscoveryError, discover
from services.worker.handler import handler_of


def _module(directory: Path, name: str, body: str) -> str:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))
    return name


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_finds_async_and_sync_handlers(modules: Path) -> None:
    name = _module(
        modules,
        "disc_basic",
        """
        from services.worker import job

        @job("a.async")
        async def first(ctx): ...

        @job("a.sync")
        def second(ctx): ...

        def not_a_handler(ctx): ...
        """,
    )
    found = discover([name])
    assert sorted(found) == ["a.async", "a.sync"]
    assert found["a.async"].is_async
    assert not found["a.sync"].is_async
    assert found["a.sync"].qualified_name == "disc_basic.second"


def test_a_handler_imported_into_a_second_module_is_one_handler(modules: Path) -> None:
    _module(modules, "disc_origin", 'from services.worker import job\n@job("x")\ndef f(ctx): ...\n')
    _module(modules, "disc_reexport", "from disc_origin import f\n")
    assert list(discover(["disc_origin", "disc_reexport"])) == ["x"]


def test_duplicate_job_type_names_both_functions(modules: Path) -> None:
    _module(modules, "disc_one", 'from services.worker import job\n@job("dup")\ndef f(ctx): ...\n')
    _module(modules, "disc_two", 'from services.worker import job\n@job("dup")\ndef g(ctx): ...\n')
    with pytest.raises(DiscoveryError, match=r"'dup'.*disc_one\.f.*disc_two\.g"):
        discover(["disc_one", "disc_two"])


def test_missing_module_and_no_handlers_are_errors(modules: Path) -> None:
    with pytest.raises(DiscoveryError, match="cannot import handler module 'disc_nowhere'"):
        discover(["disc_nowhere"])
    _module(modules, "disc_empty", "X = 1\n")
    with pytest.raises(DiscoveryError, match="no @job handlers or taskiq tasks in disc_empty"):
        discover(["disc_empty"])


def test_job_marks_the_function_and_returns_it_unchanged() -> None:
    async def handler(ctx: JobContext) -> None: ...

    assert job("image.build")(handler) is handler
    marked = handler_of(handler)
    assert marked is not None
    assert marked.job_type == "image.build"


@pytest.mark.parametrize("job_type", ["", "9starts-with-digit", "has space", "x" * 129])
def test_job_refuses_a_bad_job_type(job_type: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        job(job_type)
