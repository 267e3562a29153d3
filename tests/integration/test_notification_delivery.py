"""The delivery service as the worker runs it, against real SQLite and PostgreSQL; AWS through moto."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from chalicelib import bootstrap
from chalicelib.bootstrap import reset_for_tests
from chalicelib.notifications.delivery import (
    DeliveryAbandoned,
    DeliveryFailed,
    DeliveryOutcome,
    deliver_notification,
    safe_error_text,
)
from chalicelib.notifications.providers import delivery_client
from chalicelib.patients import service as patients
from chalicelib.service_layer.unit_of_work import ReadTransaction, UnitOfWork
from chalicelib.storage.database import get_engine
from chalicelib.storage.models import NotificationRecord, utc_now
from tests.helpers.patients import DISTINCTIVE_PATIENT


@pytest.fixture
def delivery(configured_app: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings for deterministic delivery; set more NOTIFY_* with the returned monkeypatch."""
    monkeypatch.setenv("NOTIFY_FAILURE_RATE", "0")
    reset_for_tests()
    yield monkeypatch
    reset_for_tests()


def settle(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_for_tests()


def row(notification_id: str) -> NotificationRecord:
    with ReadTransaction() as reads:
        found = reads.notifications.get(notification_id)
    assert found is not None
    return found


def sent_lines(caplog: pytest.LogCaptureFixture, notification_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage() == "notification sent" and getattr(r, "notification_id", None) == notification_id
    ]


def test_delivers_once_on_each_channel_and_a_second_run_does_nothing(
    delivery: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="telehealth.notifications")
    notification_id = patients.create_patient(
        UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings()
    ).notification_id

    first = deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)
    second = deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)

    assert (first, second) == (DeliveryOutcome.DELIVERED, DeliveryOutcome.ALREADY_FINISHED)
    delivered = row(notification_id)
    assert (delivered.status, delivered.attempts, delivered.delivered_channels) == (
        "delivered",
        1,
        "email,sms",
    )
    assert delivered.delivered_at is not None and delivered.next_attempt_at is None
    assert len(sent_lines(caplog, notification_id)) == 2
    logged = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
    for value in ("Zelda", "quixote", "5550199", "555 0199"):
        assert value not in logged


def test_a_live_claim_keeps_other_runs_out_until_it_expires(delivery: pytest.MonkeyPatch) -> None:
    notification_id = patients.create_patient(
        UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings()
    ).notification_id
    now = utc_now()
    with UnitOfWork() as uow:  # another worker is delivering it
        claimed = uow.notifications.claim(notification_id, now=now, until=now + timedelta(minutes=5))
        assert claimed is not None and claimed.attempt == 1
        uow.commit()

    assert (
        deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)
        == DeliveryOutcome.CLAIMED_ELSEWHERE
    )

    with UnitOfWork() as uow:  # ... and died: its claim runs out
        uow.session.execute(
            text("UPDATE notifications SET next_attempt_at = :past WHERE id = :id"),
            {"past": now - timedelta(seconds=1), "id": notification_id},
        )
        uow.commit()
    assert (
        deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)
        == DeliveryOutcome.DELIVERED
    )
    assert row(notification_id).attempts == 2


def test_a_notification_whose_patient_is_gone_is_cancelled(delivery: pytest.MonkeyPatch) -> None:
    change = patients.create_patient(UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings())
    with get_engine().begin() as connection:  # gone without the service, which would cancel it itself
        connection.execute(text("DELETE FROM patients WHERE id = :id"), {"id": change.patient.id})

    assert (
        deliver_notification(UnitOfWork(), change.notification_id, bootstrap.settings().notifications)
        == DeliveryOutcome.CANCELLED
    )
    assert row(change.notification_id).status == "cancelled"
    assert (
        deliver_notification(UnitOfWork(), change.notification_id, bootstrap.settings().notifications)
        == DeliveryOutcome.ALREADY_FINISHED
    )


def test_deleting_a_patient_cancels_its_unsent_notifications(delivery: pytest.MonkeyPatch) -> None:
    change = patients.create_patient(UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings())
    delivered = patients.update_patient(
        UnitOfWork(), str(change.patient.id), {"name": "Zelda Smith"}, settings=bootstrap.patient_settings()
    )
    deliver_notification(UnitOfWork(), delivered.notification_id, bootstrap.settings().notifications)

    patients.delete_patient(UnitOfWork(), str(change.patient.id))

    assert row(change.notification_id).status == "cancelled"
    assert row(delivered.notification_id).status == "delivered"


def test_failed_attempts_are_retried_then_abandoned_with_a_safe_last_error(
    delivery: pytest.MonkeyPatch,
) -> None:
    settle(delivery, NOTIFY_FAILURE_RATE="1", NOTIFY_MAX_RETRIES="1")
    notification_id = patients.create_patient(
        UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings()
    ).notification_id

    with pytest.raises(DeliveryFailed) as first:
        deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)
    retrying = row(notification_id)
    with pytest.raises(DeliveryAbandoned):
        deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)
    failed = row(notification_id)

    assert str(first.value) == "SimulatedFailure: simulated provider failure"
    assert first.value.__suppress_context__  # nothing of the cause reaches the result backend
    assert (retrying.status, retrying.attempts, retrying.next_attempt_at is not None) == ("retrying", 1, True)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 2, None)
    assert failed.last_error == "SimulatedFailure: simulated provider failure"
    assert (
        deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)
        == DeliveryOutcome.ALREADY_FINISHED
    )


def test_channels_follow_the_patient(delivery: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telehealth.notifications")
    without_phone = patients.create_patient(
        UnitOfWork(), {"name": "A", "email": "a@example.com"}, settings=bootstrap.patient_settings()
    )
    with_phone = patients.create_patient(
        UnitOfWork(), {**DISTINCTIVE_PATIENT, "email": "b@example.com"}, settings=bootstrap.patient_settings()
    )
    # The phone is removed before the creation's notification goes out: no SMS for it.
    patients.update_patient(
        UnitOfWork(), str(with_phone.patient.id), {"phone": None}, settings=bootstrap.patient_settings()
    )

    deliver_notification(UnitOfWork(), without_phone.notification_id, bootstrap.settings().notifications)
    deliver_notification(UnitOfWork(), with_phone.notification_id, bootstrap.settings().notifications)

    assert row(without_phone.notification_id).channel_list == ["email"]
    assert row(with_phone.notification_id).channel_list == ["email", "sms"]
    assert row(with_phone.notification_id).delivered_channels == "email"
    assert len(sent_lines(caplog, without_phone.notification_id)) == 1
    assert len(sent_lines(caplog, with_phone.notification_id)) == 1


def test_a_retry_skips_channels_an_earlier_attempt_delivered(
    delivery: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="telehealth.notifications")
    notification_id = patients.create_patient(
        UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings()
    ).notification_id
    with UnitOfWork() as uow:
        uow.session.execute(
            text("UPDATE notifications SET status = 'retrying', delivered_channels = 'email' WHERE id = :id"),
            {"id": notification_id},
        )
        uow.commit()

    deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)

    assert [getattr(r, "channel", None) for r in sent_lines(caplog, notification_id)] == ["sms"]
    assert row(notification_id).delivered_channels == "email,sms"


@pytest.fixture
def aws(delivery: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto's SES and SNS, with the sender verified; yields the backends that record what was sent."""
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends
    from moto.sns.models import sns_backends

    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        delivery.setenv(key, value)
    settle(delivery, NOTIFY_PROVIDER="ses,sns", NOTIFY_EMAIL_SENDER="care@clinic.example")
    reset_for_tests()
    with mock_aws():
        delivery_client("ses").verify_email_identity(EmailAddress="care@clinic.example")
        yield {
            "ses": ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"],
            "sns": sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"],
        }
    reset_for_tests()


def test_ses_sends_the_email_and_sns_the_sms_without_patient_details(aws: dict[str, Any]) -> None:
    change = patients.create_patient(UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings())

    assert (
        deliver_notification(UnitOfWork(), change.notification_id, bootstrap.settings().notifications)
        == DeliveryOutcome.DELIVERED
    )

    [email] = aws["ses"].sent_messages
    assert email.source == "care@clinic.example"
    assert email.destinations["ToAddresses"] == [DISTINCTIVE_PATIENT["email"]]
    assert email.subject == "Your telehealth patient record was created"
    assert change.notification_id in email.body and "Zelda" not in email.body
    [(phone, sms)] = aws["sns"].sms_messages.values()
    assert phone == "+14155550199"
    assert change.notification_id in sms and "Zelda" not in sms


def test_a_provider_rejection_is_retried_and_recorded_without_the_address(
    aws: dict[str, Any], delivery: pytest.MonkeyPatch
) -> None:
    settle(delivery, NOTIFY_EMAIL_SENDER="unverified@clinic.example")
    notification_id = patients.create_patient(
        UnitOfWork(), DISTINCTIVE_PATIENT, settings=bootstrap.patient_settings()
    ).notification_id

    with pytest.raises(DeliveryFailed):
        deliver_notification(UnitOfWork(), notification_id, bootstrap.settings().notifications)

    recorded = row(notification_id)
    assert recorded.last_error == "ClientError: MessageRejected"
    assert recorded.status == "retrying"


def test_safe_error_text_keeps_only_the_class_of_foreign_errors() -> None:
    assert safe_error_text(ValueError(f"{DISTINCTIVE_PATIENT['email']} is invalid")) == "ValueError"
