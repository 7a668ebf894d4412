"""Settings in the environment: durations in every documented spelling, and settings handed to a
child process read back the same."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from services.common.config import (
    AuthSettings,
    ClientSettings,
    DevStackSettings,
    GatewaySettings,
    LogSettings,
    ProducerSettings,
    RedisSettings,
    SchedulerSettings,
    StoreSettings,
    TelemetrySettings,
    WorkerSettings,
    environment_of,
    environment_variable,
)


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
    monkeypatch.setenv("JOBSTREAM_SCHEDULER_SHUTDOWN_GRACE", text)
    assert SchedulerSettings().shutdown_grace == expected


@pytest.mark.parametrize("text", ["soon", "5 minutes", "-3", "3x"])
def test_a_malformed_duration_names_the_setting(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("JOBSTREAM_SCHEDULER_SHUTDOWN_GRACE", text)
    with pytest.raises(ValidationError, match="JOBSTREAM_SCHEDULER_SHUTDOWN_GRACE"):
        SchedulerSettings()


@pytest.mark.parametrize(
    "settings",
    [
        SchedulerSettings(
            port=0, shutdown_grace=timedelta(milliseconds=1500), replica_ttl=timedelta(seconds=3.5)
        ),
        WorkerSettings(
            queues=("emails", "a,b"),
            api_key=SecretStr("jsk_0123456789abcdef_secret"),
            cancel_grace=timedelta(minutes=2),
        ),
        GatewaySettings(port=8123, cors_origins=("https://app.example.com",)),
        RedisSettings(url="redis://127.0.0.1:6390/0", cluster=True),
        StoreSettings(lease=timedelta(seconds=7), retain_failed=12),
    ],
    ids=lambda settings: type(settings).__name__,
)
def test_settings_handed_to_a_child_read_back_the_same(
    monkeypatch: pytest.MonkeyPatch, settings: BaseSettings
) -> None:
    """environment_of gives a child process the variables that make it read `settings` as they
    are: every field, under the name its class reads it from."""
    for name, value in environment_of(settings).items():
        monkeypatch.setenv(name, value)
    assert type(settings)() == settings


def test_a_setting_is_read_from_its_alias_or_the_prefix_and_its_name() -> None:
    assert environment_variable(SchedulerSettings, "port") == "JOBSTREAM_SCHEDULER_PORT"
    assert environment_variable(RedisSettings, "url") == "JOBSTREAM_REDIS_URL"
    assert environment_variable(StoreSettings, "lease") == "JOBSTREAM_LEASE"
    assert environment_of(WorkerSettings(api_key=None), "api_key") == {}


CONCERNS: dict[type[BaseSettings], str] = {
    SchedulerSettings: "SCHEDULER_",
    WorkerSettings: "WORKER_",
    GatewaySettings: "GATEWAY_",
    ProducerSettings: "PRODUCER_",
    AuthSettings: "AUTH_",
    RedisSettings: "REDIS_",
    LogSettings: "LOG_",
    TelemetrySettings: "OTEL_",
    DevStackSettings: "DEV_",
    StoreSettings: "",  # the job store's: every job obeys them
    ClientSettings: "",  # nothing of its own: the shared names below
}
SHARED = {
    "JOBSTREAM_SCHEDULER_ADDRESS",
    "JOBSTREAM_API_KEY",
    "JOBSTREAM_DISPATCH_GROUP",
    "JOBSTREAM_REDIS_URL",
}


@pytest.mark.parametrize("settings", list(CONCERNS), ids=lambda kind: kind.__name__)
def test_every_setting_follows_the_naming_rule(settings: type[BaseSettings]) -> None:
    """JOBSTREAM_<CONCERN>_<SETTING>, or one of the names several processes share."""
    concern = CONCERNS[settings]
    for field in settings.model_fields:
        name = environment_variable(settings, field)
        setting = field.upper()
        expected = f"JOBSTREAM_{setting if setting.startswith(concern) else concern + setting}"
        assert name in SHARED or name == expected, f"{settings.__name__}.{field}: {name}"


def test_a_setting_named_before_the_rule_is_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBSTREAM_REPLICA_TTL", "3s")
    assert SchedulerSettings().replica_ttl == timedelta(seconds=3)
