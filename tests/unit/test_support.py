"""The shared fixtures and support helpers do what the other tests rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from tests.support.eventually import eventually
from tests.support.ports import RESERVED
from tests.support.redis_server import RedisServer, RedisServerMissing

# Keys with different hash tags land on different primaries of a cluster.
SPREAD_KEYS = [f"support:{{tag-{n}}}:marker" for n in range(12)]


async def key_count(redis: Redis | RedisCluster) -> int:
    """Keys in the whole deployment (a cluster client's plain DBSIZE asks one random node)."""
    if isinstance(redis, RedisCluster):
        return int(await redis.dbsize(target_nodes=RedisCluster.PRIMARIES))
    return int(await redis.dbsize())


async def test_redis_answers_ping(redis: Redis | RedisCluster) -> None:
    assert await redis.ping()


def test_session_redis_is_ours_not_the_default_port(redis_url: str) -> None:
    assert redis_url.startswith("redis://127.0.0.1:")
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    assert port not in RESERVED


@pytest.mark.parametrize("run", ["first", "second"])
async def test_each_test_starts_with_an_empty_redis(redis: Redis | RedisCluster, run: str) -> None:
    assert await key_count(redis) == 0
    for key in SPREAD_KEYS:
        await redis.set(key, run)
    assert await key_count(redis) == len(SPREAD_KEYS)


async def test_client_matches_the_selected_topology(
    redis: Redis | RedisCluster, redis_cluster_mode: bool
) -> None:
    if redis_cluster_mode:
        assert isinstance(redis, RedisCluster)
        assert len(redis.get_primaries()) == 3
        info = await redis.cluster_info()
        assert info["cluster_state"] == "ok"
    else:
        assert isinstance(redis, Redis)
        assert (await redis.info("server"))["redis_mode"] == "standalone"


async def test_appendonly_server_keeps_writes_across_kill_and_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path, appendonly=True, appendfsync="always") as server:
        before = Redis.from_url(server.url)
        await before.set("durable", b"yes")
        await before.aclose()
        server.kill()
        assert not server.running
        server.restart()
        after = Redis.from_url(server.url)
        try:
            assert await after.get("durable") == b"yes"
        finally:
            await after.aclose()


def test_missing_redis_server_is_an_error_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisServerMissing, match="redis-server"):
        RedisServer(tmp_path).start()


async def test_eventually_retries_until_the_assertion_holds() -> None:
    calls: list[int] = []

    def third_call_passes() -> int:
        calls.append(1)
        assert len(calls) >= 3
        return len(calls)

    assert await eventually(third_call_passes, interval=0.001) == 3


async def test_eventually_awaits_async_assertions() -> None:
    async def value() -> str:
        return "done"

    assert await eventually(value) == "done"


async def test_eventually_reraises_the_last_assertion_after_the_timeout() -> None:
    def never() -> None:
        raise AssertionError("still not there")

    with pytest.raises(AssertionError, match="still not there"):
        await eventually(never, timeout=0.05, interval=0.01)


async def test_eventually_does_not_retry_other_errors() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await eventually(broken)
    assert len(calls) == 1
