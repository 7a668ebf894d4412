"""Prometheus series of webhook deliveries, on the scheduler's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common.metrics import DURATION_BUCKETS


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "jobstream_webhook_attempts",
            "Webhook delivery attempts by outcome: delivered, retry (failed, due again), "
            "failed (failed for good).",
            ("tenant", "queue", "outcome"),
            registry=registry,
        )
        self.latency = Histogram(
            "jobstream_webhook_attempt_seconds",
            "Latency of webhook delivery attempts, answered or not.",
            ("tenant", "queue"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
