"""The notification routes, and what create/update/delete do to the outbox, through chalice.test.Client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import Notification, utc_now
from tests.helpers.api import assert_documented, get_document
from tests.helpers.databases import sqlite_only
from tests.helpers.patients import JOHN
from tests.helpers.tokens import AUTH, JSON_AUTH, SUITE_TOKENS

# Fixed, not uuid4(): parametrized ids must be the same in every process that collects them.
UNKNOWN_NOTIFICATION_ID = "00000000-0000-4000-8000-0000000000aa"


def create(client: Any, **overrides: Any) -> dict[str, Any]:
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({**JOHN, **overrides}))
    assert response.status_code == 201, response.body
    return dict(response.json_body)


def get_json(client: Any, path: str, status: int = 200) -> dict[str, Any]:
    response = client.http.get(path, headers=AUTH)
    assert response.status_code == status, response.body
    assert response.headers["Cache-Control"] == "no-store"
    return dict(response.json_body)


def notification_count() -> int:
    with UnitOfWork() as uow:
        return uow.session.scalar(select(func.count()).select_from(Notification)) or 0


def test_create_and_update_answer_with_their_notification(client: Any) -> None:
    created = create(client)
    updated = client.http.put(
        f"/patients/{created['patient']['id']}", headers=JSON_AUTH, body=json.dumps({"name": "John Smith"})
    ).json_body

    assert set(created) == {"message", "patient", "notification_id"}
    assert set(created["patient"]) == {"id", "name", "email", "phone", "created_at", "updated_at"}
    assert uuid.UUID(created["notification_id"]) != uuid.UUID(updated["notification_id"])
    for body, event in ((created, "patient.created"), (updated, "patient.updated")):
        shown = get_json(client, f"/notifications/{body['notification_id']}")
        assert shown["event"] == event
        assert shown["patient_id"] == created["patient"]["id"]
        assert shown["channels"] == ["email", "sms"]
        # No Redis configured here: the hand-off waits for the relay, the task state is unknown.
        assert (shown["status"], shown["attempts"], shown["task_state"]) == ("pending", 0, "UNKNOWN")
        assert shown["last_error"] is None and shown["delivered_at"] is None
        assert shown["created_at"].endswith("Z")


def test_a_rejected_change_writes_no_notification(client: Any) -> None:
    create(client)
    duplicate = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(JOHN))
    invalid = client.http.put("/patients/1", headers=JSON_AUTH, body=json.dumps({"email": "nope"}))

    assert (duplicate.status_code, invalid.status_code) == (409, 400)
    assert notification_count() == 1


def test_a_patients_notifications_are_listed_oldest_first(client: Any) -> None:
    created = create(client, phone=None)
    patient_id = created["patient"]["id"]
    updated = client.http.put(
        f"/patients/{patient_id}", headers=JSON_AUTH, body=json.dumps({"name": "John Smith"})
    ).json_body
    other = create(client, email="other@example.com")

    listed = get_json(client, f"/patients/{patient_id}/notifications")
    second_page = get_json(client, f"/patients/{patient_id}/notifications?per_page=1&page=2")

    assert [n["id"] for n in listed["notifications"]] == [
        created["notification_id"],
        updated["notification_id"],
    ]
    assert (listed["total"], listed["pages"], listed["current_page"]) == (2, 1, 1)
    assert listed["notifications"][0]["channels"] == ["email"]
    assert [n["id"] for n in second_page["notifications"]] == [updated["notification_id"]]
    assert other["notification_id"] not in json.dumps(listed)


def test_a_deleted_patients_notifications_are_404_under_it_and_kept_by_id_and_status(client: Any) -> None:
    # GIVEN a patient with two notifications, then deleted
    created = create(client, phone=None)
    patient_id = created["patient"]["id"]
    updated = client.http.put(
        f"/patients/{patient_id}", headers=JSON_AUTH, body=json.dumps({"name": "John Smith"})
    ).json_body
    assert client.http.delete(f"/patients/{patient_id}", headers=AUTH).status_code == 200

    # WHEN its sub-resource is read
    under_patient = get_json(client, f"/patients/{patient_id}/notifications", status=404)

    # THEN it is gone like the patient, and the history stays where it is documented
    assert under_patient["code"] == "patient_not_found"
    by_id = get_json(client, f"/notifications/{updated['notification_id']}")
    assert (by_id["patient_id"], by_id["status"]) == (patient_id, "cancelled")
    cancelled = get_json(client, "/notifications?status=cancelled")["notifications"]
    assert {n["id"] for n in cancelled} >= {created["notification_id"], updated["notification_id"]}


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/notifications/{UNKNOWN_NOTIFICATION_ID}", "notification_not_found"),
        ("/notifications/not-a-uuid", "notification_not_found"),
        ("/notifications/" + "a" * 36, "notification_not_found"),
        ("/patients/999/notifications", "patient_not_found"),
        ("/patients/abc/notifications", "patient_not_found"),
    ],
)
def test_unknown_ids_are_404_with_the_error_body(client: Any, path: str, code: str) -> None:
    body = get_json(client, path, status=404)

    assert body["code"] == code


def test_dead_letters_are_listed_and_bad_filters_refused(client: Any) -> None:
    created = create(client)
    with UnitOfWork() as uow:
        notification = uow.session.get(Notification, created["notification_id"])
        assert notification is not None
        notification.status, notification.last_error = (
            "failed",
            "SimulatedFailure: simulated provider failure",
        )
        uow.commit()

    dead = get_json(client, "/notifications")
    pending = get_json(client, "/notifications?status=pending")
    refused = get_json(client, "/notifications?status=lost", status=400)
    bad_page = get_json(client, f"/patients/{created['patient']['id']}/notifications?page=0", status=400)

    assert [n["id"] for n in dead["notifications"]] == [created["notification_id"]]
    assert dead["notifications"][0]["last_error"] == "SimulatedFailure: simulated provider failure"
    assert pending["total"] == 0
    assert (refused["code"], refused["field"]) == ("validation_failed", "status")
    assert bad_page["field"] == "page"


@pytest.mark.parametrize(
    "path", ["/notifications", f"/notifications/{UNKNOWN_NOTIFICATION_ID}", "/patients/1/notifications"]
)
@sqlite_only
def test_notification_routes_need_the_token(client: Any, path: str) -> None:
    response = client.http.get(path)

    assert response.status_code == 401
    assert response.json_body["code"] == "unauthorized"


def test_with_redis_the_hand_off_queues_and_the_task_state_is_read(
    client: Any, notifying_app: Callable[..., None]
) -> None:
    created = create(client)

    shown = get_json(client, f"/notifications/{created['notification_id']}")

    assert (shown["status"], shown["task_state"]) == ("queued", "PENDING")


def test_with_redis_down_changes_still_succeed_and_wait_in_the_outbox(
    client: Any, notifying_app: Callable[..., None]
) -> None:
    notifying_app(REDIS_URL="redis://127.0.0.1:9/0")  # nothing listens on the discard port

    created = create(client)
    updated = client.http.put(
        f"/patients/{created['patient']['id']}", headers=JSON_AUTH, body=json.dumps({"phone": None})
    )

    assert updated.status_code == 200
    shown = get_json(client, f"/notifications/{created['notification_id']}")
    assert (shown["status"], shown["task_state"]) == ("pending", "UNKNOWN")


def test_a_delivered_notification_shows_no_error_of_an_earlier_attempt(client: Any) -> None:
    # GIVEN a notification whose first attempt failed and whose retry was delivered
    notification_id = create(client)["notification_id"]
    now = utc_now()
    with UnitOfWork() as uow:
        first = uow.notifications.claim(notification_id, now=now, until=now + timedelta(minutes=1))
        assert first is not None
        uow.notifications.mark_attempt_failed(
            first, final=False, last_error="SimulatedFailure: x", channels="", now=now, next_attempt_at=now
        )
        second = uow.notifications.claim(notification_id, now=now, until=now + timedelta(minutes=1))
        assert second is not None
        assert uow.notifications.mark_delivered(second, channels="email,sms", now=now)
        uow.commit()

    # WHEN it is read
    shown = get_json(client, f"/notifications/{notification_id}")

    # THEN the error that no longer holds is gone; the attempts still tell that there was a retry
    assert (shown["status"], shown["attempts"], shown["last_error"]) == ("delivered", 2, None)


def test_notification_lists_link_their_next_page_like_the_patient_lists(client: Any) -> None:
    # GIVEN one patient with three notifications, all pending (no Redis here)
    created = create(client)
    patient_id = created["patient"]["id"]
    for name in ("John Smith", "John Smyth"):
        client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body=json.dumps({"name": name}))

    # WHEN both lists are walked two at a time by following next
    walks = {}
    for first in (
        f"/patients/{patient_id}/notifications?per_page=2",
        "/notifications?status=pending&per_page=2",
    ):
        pages = [get_json(client, first)]
        while pages[-1]["next"] is not None:
            pages.append(get_json(client, pages[-1]["next"]))
        walks[first] = pages

    # THEN next keeps per_page and the filter, and is null on the last page
    under_patient, by_status = walks.values()
    assert under_patient[0]["next"] == f"/patients/{patient_id}/notifications?page=2&per_page=2"
    assert by_status[0]["next"] == "/notifications?status=pending&page=2&per_page=2"
    for pages in (under_patient, by_status):
        assert [len(page["notifications"]) for page in pages] == [2, 1]
        assert pages[-1]["next"] is None
    document = get_document(client)
    assert_documented(document, "/notifications", "get", client.http.get("/notifications", headers=AUTH))


def test_a_write_only_token_is_told_the_notification_was_queued(
    client: Any, notifying_app: Callable[..., None]
) -> None:
    # GIVEN a token that may write but not read the notification, and Redis up
    notifying_app(API_TOKENS=f"{SUITE_TOKENS},importer[patients:write]:writer-token")
    writer = {"Authorization": "Bearer writer-token", "Content-Type": "application/json"}

    # WHEN it creates a patient
    created = client.http.post("/patients", headers=writer, body=json.dumps(JOHN))

    # THEN the answer says the hand-off succeeded, as the notification's row does
    assert created.json_body["notification_status"] == "queued"
    shown = get_json(client, f"/notifications/{created.json_body['notification_id']}")
    assert shown["status"] == "queued"
