"""Backoff: capped exponential delays with jitter that only ever shortens them."""

from __future__ import annotations

import pytest

from services.worker.backoff import Backoff


def test_delays_grow_to_the_cap_and_reset() -> None:
    backoff = Backoff(0.1, 1.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff.failures == 6
    backoff.reset()
    assert backoff.next() == pytest.approx(0.1)


def test_jitter_shortens_by_at_most_its_share() -> None:
    backoff = Backoff(1.0, 1.0, jitter=0.25)
    delays = [backoff.next() for _ in range(200)]
    assert all(0.75 <= delay <= 1.0 for delay in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("initial", "maximum", "multiplier", "jitter"),
    [(0, 1, 2, 0), (2, 1, 2, 0), (1, 2, 0.5, 0), (1, 2, 2, 1.0)],
)
def test_bad_parameters_are_refused(
    initial: float, maximum: float, multiplier: float, jitter: float
) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial, maximum, multiplier=multiplier, jitter=jitter)
