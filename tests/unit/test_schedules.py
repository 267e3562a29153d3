"""The scheduled functions' edge: intervals read without secrets, rates EventBridge accepts, its event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.app import Chalice, Rate

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.schedules import ScheduleSettings, load_schedule_settings
from chalicelib.config.settings import PROJECT_ROOT
from chalicelib.http import schedules
from chalicelib.http.schedules import interval_of, rate_every, register_schedule, scheduled, scheduled_event
from local_server.schedules import TRIGGER_CODES, TriggerCaller, schedules_of, trigger


def test_intervals_default_to_a_minute_for_the_relay_and_an_hour_for_the_purge() -> None:
    assert load_schedule_settings({}) == ScheduleSettings(relay_interval=60, purge_interval=3600)
    assert load_schedule_settings({"NOTIFY_RELAY_INTERVAL": "120", "RETENTION_PURGE_INTERVAL": "86400"}) == (
        ScheduleSettings(relay_interval=120, purge_interval=86400)
    )


@pytest.mark.parametrize("value", ["0", "0.5", "ten", "-60"])
def test_an_interval_is_a_whole_number_of_seconds(value: str) -> None:
    with pytest.raises(ConfigurationError, match="NOTIFY_RELAY_INTERVAL"):
        load_schedule_settings({"NOTIFY_RELAY_INTERVAL": value})


@pytest.mark.parametrize(
    ("seconds", "expression"),
    [(60, "rate(1 minute)"), (300, "rate(5 minutes)"), (3600, "rate(1 hour)"), (172800, "rate(2 days)")],
)
def test_a_rate_is_written_in_the_largest_unit_that_divides_it(seconds: int, expression: str) -> None:
    rate = rate_every(seconds)

    assert rate.to_string() == expression
    assert interval_of(rate) == seconds


def test_a_sub_minute_rate_exists_for_the_local_server_and_is_refused_when_deploying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert interval_of(rate_every(2)) == 2

    monkeypatch.setattr(schedules, "deploying_with_chalice_cli", lambda: True)

    with pytest.raises(ConfigurationError, match="EventBridge schedules whole minutes: 90 seconds"):
        rate_every(90)
    assert rate_every(120).to_string() == "rate(2 minutes)"


def test_the_event_has_eventbridges_scheduled_event_shape() -> None:
    event = scheduled_event("telehealth-api-prod-relay", now=datetime(2026, 11, 30, 12, 0, tzinfo=UTC))

    assert {key: event[key] for key in ("version", "detail-type", "source", "time", "detail")} == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2026-11-30T12:00:00Z",
        "detail": {},
    }
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/telehealth-api-prod-relay"]


def test_a_registered_schedule_runs_as_lambda_would_run_it_and_the_local_server_finds_it() -> None:
    app = Chalice("scheduled")
    seen: list[Any] = []

    @scheduled(lambda: 120, "twice an hour")
    def tidy(event: Any) -> dict[str, str]:
        seen.append(event)
        return {"ok": "yes"}

    handler = register_schedule(app, tidy)
    found = schedules_of(app, "dev")

    assert found["tidy"].interval_seconds == 120
    assert found["tidy"].rule_name == "scheduled-dev-tidy"
    assert found["tidy"].run() == {"ok": "yes"}
    assert seen[0].detail_type == "Scheduled Event"  # Chalice's CloudWatchEvent, built from our event
    assert handler is app.handler_map["tidy"]


def test_a_handler_without_a_declaration_is_not_registered() -> None:
    with pytest.raises(ValueError, match="not declared with @scheduled"):
        register_schedule(Chalice("scheduled"), lambda event: None)


def test_a_cron_is_found_but_not_timed() -> None:
    from chalice.app import Cron

    app = Chalice("scheduled")
    app.schedule(Cron(0, 3, "*", "*", "?", "*"))(lambda event: None)

    assert [schedule.interval_seconds for schedule in schedules_of(app, "dev").values()] == [None]


def developer(address: str = "127.0.0.1", **headers: Any) -> TriggerCaller:
    """What ``curl -H 'X-Telehealth-Trigger: 1' -X POST http://127.0.0.1:8000/__scheduled/...`` sends."""
    return TriggerCaller(
        address=address,
        host=headers.get("host", "127.0.0.1:8000"),
        origin_sent=headers.get("origin_sent", False),
        trigger_header=headers.get("trigger_header", "1"),
    )


@pytest.mark.parametrize("client_host", ["192.168.1.20", "10.0.0.7", "2001:db8::1", "not-an-address"])
def test_the_trigger_route_refuses_a_caller_on_another_machine(client_host: str) -> None:
    # The route takes no token: with API_HOST=0.0.0.0 the network reaches the API, never the trigger.
    status, answer = trigger("/__scheduled/relay_notifications", developer(client_host))

    assert status == 403
    assert answer["code"] == "trigger_not_local" and answer["request_id"]


@pytest.mark.parametrize("client_host", ["127.0.0.1", "127.0.0.5", "::1"])
def test_the_trigger_route_answers_a_caller_on_this_machine(client_host: str) -> None:
    status, answer = trigger("/__scheduled/no_such_function", developer(client_host))

    assert status == 404 and answer["code"] == "scheduled_function_not_found"


@pytest.mark.parametrize(
    "host",
    ["localhost", "LocalHost:8000", "127.0.0.1", "127.0.0.1:8000", "127.3.2.1:80", "[::1]", "[::1]:8000"],
)
def test_the_trigger_route_answers_a_host_header_naming_this_machine(host: str) -> None:
    status, answer = trigger("/__scheduled/no_such_function", developer(host=host))

    assert status == 404 and answer["code"] == "scheduled_function_not_found"


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",  # DNS rebinding: the page's own name, resolved to 127.0.0.1
        "evil.example:8000",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "0.0.0.0:8000",
        "192.168.1.20:8000",
        "::1",  # an IPv6 address only in brackets
        "[::1",
        "127.0.0.1:port",
        "",
        None,  # absent, or sent twice
    ],
)
def test_the_trigger_route_refuses_a_host_header_naming_another_machine(host: str | None) -> None:
    status, answer = trigger("/__scheduled/relay_notifications", developer(host=host))

    assert (status, answer["code"]) == (403, "trigger_not_local")


def test_the_trigger_route_refuses_a_web_pages_request() -> None:
    # GIVEN a cross-site "simple" POST from a page in the developer's browser: Origin sent, and a
    # custom header it could only send after a preflight nobody answers
    for page in (developer(origin_sent=True), developer(origin_sent=True, trigger_header=None)):
        status, answer = trigger("/__scheduled/relay_notifications", page)

        assert (status, answer["code"]) == (403, "trigger_not_local")


@pytest.mark.parametrize("value", [None, "", "0", "yes"])
def test_the_trigger_route_needs_its_custom_header(value: str | None) -> None:
    status, answer = trigger("/__scheduled/relay_notifications", developer(trigger_header=value))

    assert (status, answer["code"]) == (403, "trigger_header_missing")
    assert "X-Telehealth-Trigger: 1" in answer["message"]


def test_every_code_the_trigger_route_answers_is_documented() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    errors_section = readme.split("### Errors", 1)[1].split("\n## ", 1)[0]
    api_doc = (PROJECT_ROOT / "docs" / "api.md").read_text()

    for code in TRIGGER_CODES:
        assert f"`{code}`" in errors_section, code
        assert f"`{code}`" in api_doc, code


def test_rate_units_are_chalices() -> None:
    assert {Rate.MINUTES, Rate.HOURS, Rate.DAYS} < set(schedules.UNIT_SECONDS)


PROD_JOB = {
    "APP_STAGE": "prod",
    "AWS_LAMBDA_FUNCTION_NAME": "telehealth-api-prod-purge_expired_records",
    "DATABASE_URL": "postgresql://db.internal/telehealth",
    # The stage's, set for every function: a scheduled function must not read it.
    "API_TOKENS_SECRET_ID": "telehealth-api/prod/api-token-sha256",
}


def test_a_scheduled_function_in_prod_reads_no_token_and_needs_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.config import secrets
    from chalicelib.config.settings import load_settings

    def no_aws(reference: str, name: str) -> str:
        raise AssertionError(f"read {reference}")

    monkeypatch.setattr(secrets, "read_reference", no_aws)

    settings = load_settings({**PROD_JOB, "_HANDLER": "app.purge_expired_records"})

    assert (settings.serves_requests, settings.auth.token_digests, settings.auth.token_secret) == (
        False,
        (),
        None,
    )
    assert settings.redis_url is None  # the purge needs no Redis


def test_the_relay_in_prod_needs_redis_and_no_token() -> None:
    from chalicelib.config.settings import load_settings

    # The relay hands notifications to the broker: without one it would leave them pending for ever.
    relay = {**PROD_JOB, "_HANDLER": "app.relay_notifications"}
    with pytest.raises(ConfigurationError, match="prod stage needs REDIS_URL"):
        load_settings(relay)

    settings = load_settings({**relay, "REDIS_URL": "redis://cache.internal:6379/0"})
    assert (settings.serves_requests, settings.auth.token_digests, settings.needs_broker) == (False, (), True)


def test_the_api_function_in_prod_needs_redis_and_leaves_tokens_to_the_authorizer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.config import secrets
    from chalicelib.config.settings import load_settings

    def no_aws(reference: str, name: str) -> str:
        raise AssertionError(f"read {reference}")

    # GIVEN the API's own Lambda function in prod (Lambda names its handler), told of no token at all
    monkeypatch.setattr(secrets, "read_reference", no_aws)
    env = {**PROD_JOB, "_HANDLER": "app.app", "API_TOKENS_SECRET_ID": "", "IDEMPOTENCY_KEY_SECRET": "k" * 32}
    with pytest.raises(ConfigurationError, match="prod stage needs REDIS_URL"):
        load_settings(env)

    # WHEN it starts with Redis
    settings = load_settings({**env, "REDIS_URL": "redis://cache.internal:6379/0"})

    # THEN it reads no token: API Gateway ran the authorizer's function before it
    assert (settings.checks_tokens, settings.auth.token_digests, settings.auth.token_secret) == (
        False,
        (),
        None,
    )
    # while the API served in one process (chalice local, the test client: no _HANDLER) checks them
    del env["_HANDLER"]
    with pytest.raises(ConfigurationError, match="needs API_TOKENS"):
        load_settings({**env, "REDIS_URL": "redis://cache.internal:6379/0"})


def test_a_failing_scheduled_function_answers_500_and_logs_only_its_error_class(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from local_server import schedules as local

    # GIVEN a scheduled function whose error quotes patient data (as a database error may)
    app = Chalice("scheduled")

    @scheduled(lambda: 60, "fails")
    def failing(event: Any) -> None:
        raise RuntimeError("duplicate key: ann@example.com")

    register_schedule(app, failing)
    monkeypatch.setitem(local._schedules, "failing", schedules_of(app, "dev")["failing"])

    # WHEN it is fired through the trigger route
    with caplog.at_level("INFO", logger="telehealth.schedules"):
        status, answer = trigger("/__scheduled/failing", developer())

    # THEN the answer is our 500, and neither it nor the log line carries the error's text
    assert status == 500
    assert answer["code"] == "internal_error" and answer["request_id"]
    [record] = caplog.records
    assert (record.getMessage(), record.function, record.error) == (  # type: ignore[attr-defined]
        "scheduled function failed",
        "failing",
        "RuntimeError",
    )
    assert "ann@example.com" not in f"{answer} {caplog.text} {vars(record)}"
