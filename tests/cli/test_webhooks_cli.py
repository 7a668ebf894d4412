"""`jobstream webhook create/list/show/update/delete/deliveries` in a subprocess: the secret printed
once at creation, updates that change only the options given, bad input named by field (exit 2),
a webhook's life until it is NOT_FOUND (exit 3), and deliveries to a real receiver on loopback."""

from __future__ import annotations

from typing import cast

from tests.cli.runner import Run, jobstream
from tests.client.harness import SchedulerHarness
from tests.support.eventually import eventually
from tests.support.webhook_receiver import webhook_receiver

LIST_HEADERS = ["WEBHOOK", "URL", "EVENTS", "JOB", "TYPES", "STATE", "CREATED"]


def _object(run: Run) -> dict[str, object]:
    assert run.code == 0, run.err
    value = run.json()
    assert isinstance(value, dict), run.out
    return cast("dict[str, object]", value)


async def test_create_prints_the_secret_once(scheduler: SchedulerHarness) -> None:
    address = scheduler.address
    created = await jobstream(
        address,
        "webhook",
        "create",
        "q1",
        "ops",
        "https://hooks.example.com/jobstream",
        "--event",
        "job.failed",
        "--event",
        "JOB_SUCCEEDED",
        "--job-type",
        "report.build",
        "--description",
        "the ops channel",
    )
    assert created.code == 0, created.err
    lines = created.lines()
    assert lines[0] == "Webhook:     q1/ops  (queues/q1/webhooks/ops)"
    assert "URL:         https://hooks.example.com/jobstream" in lines
    assert "Events:      job.failed,job.succeeded" in lines
    assert "Job types:   report.build" in lines
    assert "State:       enabled" in lines
    [secret_line] = [line for line in lines if line.startswith("Secret:")]
    secret = secret_line.split()[1]
    assert secret.startswith("whsec_")
    assert f"Secret ends: {secret[-4:]}" in lines
    assert lines[-1].startswith("(shown only now")

    shown = await jobstream(address, "webhook", "show", "q1/ops")
    assert shown.code == 0, shown.err
    assert secret not in shown.out
    assert not any(line.startswith("Secret:") for line in shown.lines())
    as_json = _object(await jobstream(address, "webhook", "show", "q1/ops", "--json"))
    assert "secret" not in as_json
    assert as_json["secretHint"] == secret[-4:]
    assert as_json["eventTypes"] == ["EVENT_TYPE_JOB_FAILED", "EVENT_TYPE_JOB_SUCCEEDED"]

    made = _object(
        await jobstream(
            address, "webhook", "create", "q2", "all", "https://a.example.com", "--json"
        )
    )
    assert cast("str", made["secret"]).startswith("whsec_")


async def test_bad_input_exits_2_naming_the_field(scheduler: SchedulerHarness) -> None:
    address = scheduler.address
    private = await jobstream(address, "webhook", "create", "q1", "x", "http://127.0.0.1:9/hook")
    assert private.code == 2
    assert "  webhook.url: host 127.0.0.1 is not a public address" in private.err
    unknown = await jobstream(
        address, "webhook", "create", "q1", "x", "https://a.example.com", "--event", "job.exploded"
    )
    assert unknown.code == 2
    assert "unknown event type 'job.exploded'; one of job.created, job.started" in unknown.err
    both = await jobstream(
        address, "webhook", "update", "q1/x", "--event", "job.failed", "--all-events"
    )
    assert both.code == 2
    assert "not allowed with argument" in both.err
    assert (await jobstream(address, "webhook", "list", "--json")).out.strip() == "{}"

    await jobstream(address, "webhook", "create", "q1", "x", "https://a.example.com")
    nothing = await jobstream(address, "webhook", "update", "q1/x")
    assert (nothing.code, nothing.err) == (
        2,
        "jobstream: nothing to change: give --url, --event, --job-type, --description, --secret, "
        "...\n",
    )


async def test_a_webhooks_life(scheduler: SchedulerHarness) -> None:
    address = scheduler.address
    for queue, webhook_id in (("q1", "ops"), ("q2", "audit")):
        made = await jobstream(
            address, "webhook", "create", queue, webhook_id, "https://a.example.com/h", "--json"
        )
        assert made.code == 0, made.err

    table = (await jobstream(address, "webhook", "list")).lines()
    assert table[0].split() == LIST_HEADERS
    assert table[1].split()[:5] == ["q1/ops", "https://a.example.com/h", "all", "all", "enabled"]
    assert table[2].split()[0] == "q2/audit"
    assert len(table) == 3
    only_q2 = (await jobstream(address, "webhook", "list", "queues/q2")).lines()
    assert [row.split()[0] for row in only_q2[1:]] == ["q2/audit"]

    updated = await jobstream(
        address, "webhook", "update", "q1/ops", "--disable", "--event", "job.created"
    )
    assert updated.code == 0, updated.err
    assert "State:       disabled" in updated.lines()
    assert "Events:      job.created" in updated.lines()
    assert "URL:         https://a.example.com/h" in updated.lines()  # unchanged
    assert not any(line.startswith("Secret:") for line in updated.lines())
    enabled = _object(
        await jobstream(
            address, "webhook", "update", "q1/ops", "--enable", "--all-events", "--json"
        )
    )
    assert ("disabled" not in enabled, "eventTypes" not in enabled) == (True, True)
    rotated = await jobstream(address, "webhook", "update", "q1/ops", "--new-secret")
    assert any(line.startswith("Secret:      whsec_") for line in rotated.lines())

    deleted = await jobstream(address, "webhook", "delete", "q1/ops")
    assert (deleted.code, deleted.out) == (0, "deleted webhook q1/ops\n")
    gone = await jobstream(address, "webhook", "show", "q1/ops")
    assert (gone.code, gone.err) == (
        3,
        "jobstream: NOT_FOUND (WEBHOOK_NOT_FOUND): webhook queues/q1/webhooks/ops not found\n",
    )
    assert (await jobstream(address, "webhook", "deliveries", "q1/ops")).code == 3
    remaining = _object(await jobstream(address, "webhook", "list", "--json"))
    webhooks = cast("list[dict[str, object]]", remaining["webhooks"])
    assert [w["name"] for w in webhooks] == ["queues/q2/webhooks/audit"]


async def test_deliveries_show_the_last_attempt(delivering: SchedulerHarness) -> None:
    address = delivering.address
    async with webhook_receiver(503) as receiver:
        made = await jobstream(
            address, "webhook", "create", "q1", "ops", receiver.url, "--event", "job.created"
        )
        assert made.code == 0, made.err
        assert (await jobstream(address, "webhook", "deliveries", "q1/ops")).out == (
            "no deliveries\n"
        )
        job = _object(await jobstream(address, "enqueue", "q1", "mail", "--json"))
        await receiver.wait_for(2)

        async def delivered() -> list[str]:
            table = (await jobstream(address, "webhook", "deliveries", "q1/ops")).lines()
            assert table[1].split()[3] == "DELIVERED", table
            return table

        table = await eventually(delivered, timeout=15)
    headers = ["DELIVERY", "EVENT", "JOB", "STATE", "ATTEMPTS", "LAST", "ATTEMPT", "NEXT"]
    assert table[0].split() == [*headers, "CREATED"]
    row = table[1].split()
    short_job = cast("str", job["name"]).replace("queues/q1/jobs/", "q1/")
    assert row[1:7] == ["job.created", short_job, "DELIVERED", "2", "HTTP", "200"]
    as_json = _object(await jobstream(address, "webhook", "deliveries", "q1/ops", "--json"))
    [delivery] = cast("list[dict[str, object]]", as_json["deliveries"])
    attempts = cast("list[dict[str, object]]", delivery["attempts"])
    assert [a["httpStatus"] for a in attempts] == [503, 200]
