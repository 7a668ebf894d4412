from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.config import StoreSettings
from services.common.redis_client import RedisClient
from services.scheduler.store.store import JobStore
from tests.scheduler.store.helpers import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store_settings() -> StoreSettings:
    return StoreSettings(lease=timedelta(seconds=30), dispatch_window=100)


@pytest.fixture
def store(redis: RedisClient, store_settings: StoreSettings, clock: ManualClock) -> JobStore:
    return JobStore(redis, settings=store_settings, clock=clock)
