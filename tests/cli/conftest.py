"""The client tests' fixtures: a real scheduler on port 0, a client of it, a hand-driven worker."""

from tests.client.conftest import (  # noqa: F401 (fixtures, found by name)
    client,
    delivering,
    scheduler,
    store_settings,
    worker,
)
