"""Durations in the environment: plain seconds, a unit suffix, ISO 8601 or HH:MM:SS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.common.config import SchedulerSettings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30", timedelta(seconds=30)),
        ("1.5", timedelta(seconds=1.5)),
        ("500ms", timedelta(milliseconds=500)),
        ("45s", timedelta(seconds=45)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("PT30S", timedelta(seconds=30)),
        ("00:01:30", timedelta(seconds=90)),
    ],
)
def test_a_duration_is_read_in_every_documented_spelling(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: timedelta
) -> None:
    monkeypatch.setenv("JOBSTREAM_SHUTDOWN_GRACE", text)
    assert SchedulerSettings().shutdown_grace == expected


@pytest.mark.parametrize("text", ["soon", "5 minutes", "-3", "3x"])
def test_a_malformed_duration_names_the_setting(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("JOBSTREAM_SHUTDOWN_GRACE", text)
    with pytest.raises(ValidationError, match="shutdown_grace"):
        SchedulerSettings()
