"""The audit trail: one row per read or change of patient data, of notifications and of the trail itself,
and GET /audit, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import event, select, text, update

from chalicelib.audit.recording import LIST_PATIENTS, READ_PATIENT, AuditContext
from chalicelib.audit.service import record_outcome
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import get_engine
from chalicelib.storage.models import AuditDisclosure, AuditEvent
from tests.helpers.api import assert_documented, assert_error, get_document
from tests.helpers.databases import audit_trail_offline, sqlite_only
from tests.helpers.patients import DISTINCTIVE_PATIENT
from tests.helpers.tokens import AUTH, JSON_AUTH, OTHER_TOKEN

COLUMNS = ("principal", "action", "patient_id", "status")


@contextmanager
def disclosures_offline() -> Iterator[None]:
    """Every write to audit_disclosures fails until the block ends; audit_events still takes rows."""
    sqlite = get_engine().dialect.name == "sqlite"
    offline = (
        [
            "CREATE TRIGGER disclosures_offline BEFORE INSERT ON audit_disclosures"
            " BEGIN SELECT RAISE(ABORT, 'disclosures offline'); END"
        ]
        if sqlite
        else [
            "CREATE FUNCTION disclosures_offline() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'disclosures offline'; END $$",
            "CREATE TRIGGER disclosures_offline BEFORE INSERT ON audit_disclosures"
            " FOR EACH ROW EXECUTE FUNCTION disclosures_offline()",
        ]
    )
    online = (
        ["DROP TRIGGER disclosures_offline"]
        if sqlite
        else ["DROP TRIGGER disclosures_offline ON audit_disclosures", "DROP FUNCTION disclosures_offline()"]
    )
    with get_engine().begin() as connection:
        for statement in offline:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with get_engine().begin() as connection:
            for statement in online:
                connection.execute(text(statement))


def audit_rows() -> list[dict[str, Any]]:
    with get_engine().connect() as connection:
        table = AuditEvent.__table__
        result = connection.execute(select(table).order_by(table.c.id))
        return [dict(row._mapping) for row in result]


def summary() -> list[tuple[Any, ...]]:
    return [tuple(row[column] for column in COLUMNS) for row in audit_rows()]


def create(client: Any, body: dict[str, Any] = DISTINCTIVE_PATIENT) -> int:
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(body))
    assert response.status_code == 201, response.body
    return int(response.json_body["patient"]["id"])


def put(client: Any, patient_id: Any, body: dict[str, Any], headers: dict[str, str] = JSON_AUTH) -> Any:
    return client.http.put(f"/patients/{patient_id}", headers=headers, body=json.dumps(body))


def lambda_event(
    method: str,
    resource: str,
    path: str,
    *,
    authorizer: dict[str, str],
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    """A REST API proxy event as API Gateway hands it to Lambda, after the authorizer allowed it."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_params,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "authorizer": authorizer,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from app import app

    return dict(app(event, None))


def test_each_action_writes_exactly_one_row(client: Any) -> None:
    patient_id = create(client)
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    client.http.get(f"/patients/{patient_id}", headers={**AUTH, "If-None-Match": f'"{patient_id}-1"'})
    put(client, patient_id, {"name": "Changed"})
    client.http.get("/patients", headers=AUTH)
    client.http.delete(f"/patients/{patient_id}", headers=AUTH)

    assert summary() == [
        ("suite", "patient.create", patient_id, 201),
        ("suite", "patient.read", patient_id, 200),
        ("suite", "patient.read", patient_id, 304),
        ("suite", "patient.update", patient_id, 200),
        ("suite", "patient.list", None, 200),
        ("suite", "patient.delete", patient_id, 200),
    ]
    rows = audit_rows()
    assert all(isinstance(row["occurred_at"], datetime) for row in rows)
    assert [row["occurred_at"] for row in rows] == sorted(row["occurred_at"] for row in rows)


def test_an_idempotent_replay_is_recorded_as_one(client: Any) -> None:
    headers = {**JSON_AUTH, "Idempotency-Key": "k"}
    first = client.http.post("/patients", headers=headers, body=json.dumps(DISTINCTIVE_PATIENT))
    client.http.post("/patients", headers=headers, body=json.dumps(DISTINCTIVE_PATIENT))
    reused = client.http.post(
        "/patients", headers=headers, body=json.dumps({**DISTINCTIVE_PATIENT, "name": "Other"})
    )

    patient_id = first.json_body["patient"]["id"]
    assert reused.status_code == 422
    assert summary() == [
        ("suite", "patient.create", patient_id, 201),
        ("suite", "patient.create_replayed", patient_id, 201),
        ("suite", "patient.create", None, 422),
    ]


def test_refused_requests_are_recorded_with_their_status(client: Any) -> None:
    patient_id = create(client)
    other_id = create(client, {**DISTINCTIVE_PATIENT, "email": "other@example.org"})
    audit_before = len(audit_rows())

    client.http.get("/patients/424242", headers=AUTH)
    client.http.get("/patients/not-a-number", headers=AUTH)
    client.http.get("/patients?page=0", headers=AUTH)
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps({"name": "No Email"}))
    put(client, other_id, {"email": DISTINCTIVE_PATIENT["email"]})
    put(client, patient_id, {"name": "Late"}, headers={**JSON_AUTH, "If-Match": f'"{patient_id}-7"'})
    client.http.delete(f"/patients/{patient_id}", headers={**AUTH, "If-Match": "junk"})
    client.http.get(f"/patients/{patient_id}")  # no token: the authorizer refuses before any view

    assert summary()[audit_before:] == [
        ("suite", "patient.read", 424242, 404),
        ("suite", "patient.read", None, 404),
        ("suite", "patient.list", None, 400),
        ("suite", "patient.create", None, 400),
        ("suite", "patient.update", other_id, 409),
        ("suite", "patient.update", patient_id, 412),
        ("suite", "patient.delete", patient_id, 400),
    ]


def test_a_failed_change_changes_nothing_and_leaves_its_row(client: Any) -> None:
    patient_id = create(client)
    other_id = create(client, {**DISTINCTIVE_PATIENT, "email": "other@example.org"})

    response = put(client, other_id, {"name": "Renamed", "email": DISTINCTIVE_PATIENT["email"].upper()})

    assert_error(response, 409, "duplicate_email")
    other = client.http.get(f"/patients/{other_id}", headers=AUTH).json_body
    assert (other["name"], other["email"]) == (DISTINCTIVE_PATIENT["name"], "other@example.org")
    assert ("suite", "patient.update", other_id, 409) in summary()
    assert [row for row in summary() if row[1] == "patient.update"] == [
        ("suite", "patient.update", other_id, 409)
    ]
    assert patient_id != other_id


def test_rows_survive_the_patients_deletion(client: Any) -> None:
    patient_id = create(client)
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    client.http.delete(f"/patients/{patient_id}", headers=AUTH)

    gone = client.http.get(f"/patients/{patient_id}", headers=AUTH)
    response = client.http.get(f"/audit?patient_id={patient_id}", headers=AUTH)

    assert gone.status_code == 404
    assert [e["action"] for e in response.json_body["events"]] == [
        "patient.read",
        "patient.delete",
        "patient.read",
        "patient.create",
    ]


def test_no_name_email_or_phone_in_any_column(client: Any) -> None:
    # GIVEN a patient's whole life through the API, refusals included
    patient_id = create(client)
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    put(client, patient_id, {"phone": "+1 212 555 0123"})
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT))  # 409
    client.http.post(
        "/patients", headers={**JSON_AUTH, "Idempotency-Key": DISTINCTIVE_PATIENT["email"]}, body="{}"
    )
    client.http.get("/patients", headers=AUTH)
    client.http.delete(f"/patients/{patient_id}", headers=AUTH)

    # THEN no audit value holds any form of the patient's identifiers (timestamps hold digits, so
    # phone numbers are looked for whole)
    stored = " ".join(str(value) for row in audit_rows() for value in row.values()).lower()
    forbidden = [
        DISTINCTIVE_PATIENT["name"],
        "zelda",
        "quixote",
        DISTINCTIVE_PATIENT["email"],
        "4155550199",
        "555 0199",
        "2125550123",
        "555 0123",
    ]
    assert len(audit_rows()) == 7
    for value in forbidden:
        assert value.lower() not in stored, value


def test_request_id_and_principal_come_from_the_api_gateway_event(client: Any) -> None:
    patient_id = create(client)

    answer = invoke(
        lambda_event(
            "GET",
            "/patients/{patient_id}",
            f"/patients/{patient_id}",
            authorizer={"principal": "clinic-7", "scopes": "patients:read"},
            path_params={"patient_id": str(patient_id)},
        )
    )

    assert answer["statusCode"] == 200
    last = audit_rows()[-1]
    assert (last["principal"], last["action"], last["patient_id"], last["status"]) == (
        "clinic-7",
        "patient.read",
        patient_id,
        200,
    )
    assert last["request_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_a_read_whose_row_cannot_be_written_is_refused_with_503(client: Any) -> None:
    patient_id = create(client)

    with audit_trail_offline():
        response = client.http.get(f"/patients/{patient_id}", headers=AUTH)
        listed = client.http.get("/patients", headers=AUTH)

    assert_error(response, 503, "audit_unavailable")
    assert_error(listed, 503, "audit_unavailable")
    for answer in (response, listed):
        assert DISTINCTIVE_PATIENT["email"] not in answer.body.decode()
        assert answer.headers["Cache-Control"] == "no-store"


def test_a_change_never_commits_without_its_row(client: Any) -> None:
    patient_id = create(client)

    with audit_trail_offline():
        updated = put(client, patient_id, {"name": "Unrecorded"})
        deleted = client.http.delete(f"/patients/{patient_id}", headers=AUTH)
        created = client.http.post(
            "/patients",
            headers=JSON_AUTH,
            body=json.dumps({**DISTINCTIVE_PATIENT, "email": "new@example.org"}),
        )

    for response in (updated, deleted, created):
        assert_error(response, 503, "audit_unavailable")
    patients = client.http.get("/patients", headers=AUTH).json_body
    assert [(p["id"], p["name"]) for p in patients["patients"]] == [(patient_id, DISTINCTIVE_PATIENT["name"])]
    assert patients["total"] == 1


def test_concurrent_refusals_of_one_principal_share_one_row_per_minute(client: Any) -> None:
    # GIVEN 24 rate-limited refusals of one principal recorded at once, on several routes
    def refuse(n: int) -> None:
        action = (READ_PATIENT, LIST_PATIENTS)[n % 2]
        context = AuditContext(principal="flood", action=action, request_id=f"r{n}", patient_id=n)
        record_outcome(UnitOfWork(), context, 429, durable_reads=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(refuse, range(24)))

    # THEN they are counted, one row per minute, with no patient (a refusal disclosed nothing)
    rows = audit_rows()
    assert sum(row["count"] for row in rows) == 24
    assert len(rows) == len({row["window_start"] for row in rows}) <= 2
    assert {(r["principal"], r["action"], r["patient_id"], r["status"]) for r in rows} == {
        ("flood", "request.rate_limited", None, 429)
    }
    # and GET /audit shows the count, as the document describes it
    response = client.http.get("/audit?principal=flood", headers=AUTH)
    assert sum(event["count"] for event in response.json_body["events"]) == 24
    assert_documented(get_document(client), "/audit", "get", response)


def test_get_audit_pages_newest_first_and_keeps_filters_in_next(client: Any) -> None:
    patient_id = create(client)
    other_id = create(client, {**DISTINCTIVE_PATIENT, "email": "other@example.org"})
    for _ in range(4):
        client.http.get(f"/patients/{patient_id}", headers=AUTH)
    # A page showing the patient, not the other one it reads to know a next page exists: it
    # disclosed the patient (issue 20), so it is in the patient's trail.
    client.http.get("/patients?per_page=1", headers=AUTH)
    client.http.get(f"/patients/{other_id}", headers=AUTH)  # another patient: filtered out
    rows = audit_rows()
    expected = [row["id"] for row in reversed(rows) if row["patient_id"] == patient_id]
    expected.insert(0, next(row["id"] for row in rows if row["action"] == "patient.list"))

    seen: list[int] = []
    link: str | None = f"/audit?patient_id={patient_id}&per_page=2"
    pages = 0
    while link:
        body = client.http.get(link, headers=AUTH).json_body
        seen += [event["id"] for event in body["events"]]
        assert body["per_page"] == 2
        link = body["next"]
        assert link is None or f"patient_id={patient_id}" in link
        pages += 1

    assert seen == expected and len(seen) == 6
    assert pages == 3


def disclosures() -> list[tuple[int, int]]:
    """(patient_id, event_id) of every disclosure, in event order."""
    with get_engine().connect() as connection:
        table = AuditDisclosure.__table__
        result = connection.execute(select(table.c.patient_id, table.c.event_id))
        return sorted(((row.patient_id, row.event_id) for row in result), key=lambda row: (row[1], row[0]))


def event_id_of(action: str, status: int, patient_id: int | None = None) -> int:
    return next(
        row["id"]
        for row in reversed(audit_rows())
        if (row["action"], row["status"], row["patient_id"]) == (action, status, patient_id)
    )


def test_a_read_discloses_its_patient_only_when_it_answers_200(client: Any) -> None:
    patient_id = create(client)
    current = f'"{patient_id}-1"'

    # WHEN the patient is read, read with its current ETag, with "*", with an old one, and missed
    answers = [
        client.http.get(f"/patients/{patient_id}", headers=AUTH),
        client.http.get(f"/patients/{patient_id}", headers={**AUTH, "If-None-Match": current}),
        client.http.get(f"/patients/{patient_id}", headers={**AUTH, "If-None-Match": "*"}),
        client.http.get(f"/patients/{patient_id}", headers={**AUTH, "If-None-Match": f'W/"{patient_id}-01"'}),
        client.http.get("/patients/424242", headers=AUTH),
    ]

    # THEN each row has the status answered, and only the 200s disclosed the patient
    assert [answer.status_code for answer in answers] == [200, 304, 304, 200, 404]
    reads = [row for row in summary() if row[1] == "patient.read"]
    assert reads == [
        ("suite", "patient.read", patient_id, 200),
        ("suite", "patient.read", patient_id, 304),
        ("suite", "patient.read", patient_id, 304),
        ("suite", "patient.read", patient_id, 200),
        ("suite", "patient.read", 424242, 404),
    ]
    # A read by id is accounted for by its own row (patient and status): it writes no disclosure row,
    # and the patient's trail shows the two reads that disclosed it among its events.
    assert disclosures() == []
    trail = client.http.get(f"/audit?patient_id={patient_id}", headers=AUTH).json_body["events"]
    assert [(e["action"], e["status"]) for e in trail if e["action"] == "patient.read"].count(
        ("patient.read", 200)
    ) == 2


def test_a_list_page_discloses_the_patients_it_shows_and_no_others(client: Any) -> None:
    # GIVEN three patients
    ids = [create(client, {**DISTINCTIVE_PATIENT, "email": f"p{n}@example.org"}) for n in range(3)]

    # WHEN a page of two is listed (reading the third to know a next page exists), then by cursor
    first = client.http.get("/patients?per_page=2", headers=AUTH).json_body
    rest = client.http.get(f"/patients?per_page=2&after={ids[1]}", headers=AUTH).json_body
    empty = client.http.get("/patients?page=9", headers=AUTH).json_body

    # THEN each page's row names exactly the patients it showed
    assert [p["id"] for p in first["patients"]] == ids[:2] and first["total"] == 3
    assert [p["id"] for p in rest["patients"]] == ids[2:] and rest["next"] is None
    assert empty["patients"] == [] and empty["total"] == 3
    lists = [row["id"] for row in audit_rows() if row["action"] == "patient.list"]
    assert disclosures() == [(ids[0], lists[0]), (ids[1], lists[0]), (ids[2], lists[1])]

    # AND each patient's trail holds the pages that showed them, newest first, and nothing else
    def trail(patient_id: int) -> list[tuple[Any, ...]]:
        events = client.http.get(f"/audit?patient_id={patient_id}", headers=AUTH).json_body["events"]
        return [(e["id"], e["action"], e["patient_id"], e["status"]) for e in events]

    created = [event_id_of("patient.create", 201, patient_id) for patient_id in ids]
    for patient_id, page, creation in zip(ids, (0, 0, 1), created, strict=True):
        assert trail(patient_id) == [
            (lists[page], "patient.list", None, 200),
            (creation, "patient.create", patient_id, 201),
        ]


def test_the_trail_of_a_patient_combines_filters_with_its_disclosures(client: Any) -> None:
    patient_id = create(client)
    client.http.get("/patients", headers=AUTH)
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    with get_engine().begin() as connection:
        table = AuditEvent.__table__
        listed = event_id_of("patient.list", 200)
        connection.execute(update(table).where(table.c.id == listed).values(occurred_at=datetime(2026, 1, 1)))

    old = client.http.get(f"/audit?patient_id={patient_id}&until=2026-01-02", headers=AUTH).json_body
    other = client.http.get(f"/audit?patient_id={patient_id}&principal=nobody", headers=AUTH).json_body
    cursor = client.http.get(f"/audit?patient_id={patient_id}&before={listed}", headers=AUTH).json_body

    assert [e["id"] for e in old["events"]] == [listed]
    assert other["events"] == []
    assert [e["action"] for e in cursor["events"]] == ["patient.create"]


def test_a_page_whose_disclosures_cannot_be_written_is_refused_with_503(client: Any) -> None:
    patient_id = create(client)

    with disclosures_offline():
        listed = client.http.get("/patients", headers=AUTH)
        read = client.http.get(f"/patients/{patient_id}", headers=AUTH)

    assert_error(listed, 503, "audit_unavailable")
    assert DISTINCTIVE_PATIENT["email"] not in listed.body.decode()
    # A read by id needs no disclosure row (its own row names its patient): it is answered.
    assert read.status_code == 200
    # The refusal is in the trail (its own row disclosed nothing); no disclosure was kept.
    assert summary()[-2:] == [
        ("suite", "patient.list", None, 503),
        ("suite", "patient.read", patient_id, 200),
    ]
    assert disclosures() == []


def test_get_audit_filters_by_principal(two_principals: Any) -> None:
    client = two_principals
    patient_id = create(client)
    client.http.get(f"/patients/{patient_id}", headers={"Authorization": f"Bearer {OTHER_TOKEN}"})

    theirs = client.http.get("/audit?principal=other", headers=AUTH).json_body["events"]
    mine = client.http.get("/audit?principal=suite", headers=AUTH).json_body["events"]

    assert [(e["principal"], e["action"]) for e in theirs] == [("other", "patient.read")]
    # The first GET /audit is in the trail by now.
    assert [(e["principal"], e["action"]) for e in mine] == [
        ("suite", "audit.read"),
        ("suite", "patient.create"),
    ]


def test_get_audit_filters_by_time_range(client: Any) -> None:
    patient_id = create(client)
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    client.http.get(f"/patients/{patient_id}", headers=AUTH)
    ids = [row["id"] for row in audit_rows()]
    with get_engine().begin() as connection:
        for row_id, hour in zip(ids, (9, 10, 11), strict=True):
            # Through the column's type, so SQLite stores the same text form the API writes.
            table = AuditEvent.__table__
            at = datetime(2026, 1, 1, hour)
            connection.execute(update(table).where(table.c.id == row_id).values(occurred_at=at))

    def ids_between(**bounds: str) -> list[int]:
        response = client.http.get(f"/audit?{urlencode(bounds)}", headers=AUTH)
        assert response.status_code == 200, response.body
        # Each GET /audit adds its own row, dated now: only the three dated rows are compared.
        return [event["id"] for event in response.json_body["events"] if event["id"] in ids]

    assert ids_between(since="2026-01-01T10:00:00Z") == [ids[2], ids[1]]
    assert ids_between(until="2026-01-01T10:00:00Z") == [ids[0]]
    assert ids_between(since="2026-01-01T10:30:00+02:00", until="2026-01-01T11:30:00+02:00") == [ids[0]]
    assert ids_between(since="2026-01-01T09:30:00", until="2026-01-01T10:30:00") == [ids[1]]
    assert ids_between(since="2026-01-02") == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("patient_id=abc", "patient_id"),
        ("patient_id=0", "patient_id"),
        ("since=yesterday", "since"),
        ("since=2026-01-31%2009:30", "since"),
        ("until=2026-01-31T09:30:00.1234567Z", "until"),
        ("principal=" + "p" * 256, "principal"),
        ("principal=", "principal"),
        ("principal=%E2%80%8B", "principal"),
        ("before=0", "before"),
        ("per_page=101", "per_page"),
    ],
)
@sqlite_only
def test_get_audit_rejects_filters_the_document_refuses(client: Any, query: str, field: str) -> None:
    assert_error(client.http.get(f"/audit?{query}", headers=AUTH), 400, "validation_failed", field)


@pytest.mark.parametrize(
    "query, field",
    [
        ("until=2026-13-01", "until"),
        ("until=2026-02-30", "until"),
        ("since=2026-01-31T25:00", "since"),
        ("since=2026-01-31T09:30%2B01:75", "since"),
        ("since=0001-01-01T00:00:00%2B01:00", "since"),
    ],
)
@sqlite_only
def test_get_audit_answers_422_to_a_well_formed_time_that_does_not_exist(
    client: Any, query: str, field: str
) -> None:
    # The pattern the document publishes admits these; the calendar does not.
    assert_error(client.http.get(f"/audit?{query}", headers=AUTH), 422, "validation_failed", field)


def test_notification_and_audit_reads_are_recorded_with_the_patient_they_concern(client: Any) -> None:
    # GIVEN a patient whose creation wrote a notification
    created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT)).json_body
    patient_id, notification_id = created["patient"]["id"], created["notification_id"]

    # WHEN the notifications and the trail are read, and refused
    answers = [
        client.http.get("/notifications?status=pending", headers=AUTH),
        client.http.get(f"/notifications/{notification_id}", headers=AUTH),
        client.http.get("/notifications/00000000-0000-4000-8000-000000000000", headers=AUTH),
        client.http.get(f"/patients/{patient_id}/notifications", headers=AUTH),
        client.http.get("/patients/424242/notifications", headers=AUTH),
        client.http.get("/audit", headers=AUTH),
        client.http.get(f"/audit?patient_id={patient_id}", headers=AUTH),
        client.http.get("/audit?since=never", headers=AUTH),
    ]

    # THEN each leaves its row, naming the patient whose data it showed
    assert [answer.status_code for answer in answers] == [200, 200, 404, 200, 404, 200, 200, 400]
    assert summary() == [
        ("suite", "patient.create", patient_id, 201),
        ("suite", "notification.list", None, 200),
        ("suite", "notification.read", patient_id, 200),
        ("suite", "notification.read", None, 404),
        ("suite", "patient.notifications", patient_id, 200),
        ("suite", "patient.notifications", 424242, 404),
        ("suite", "audit.read", None, 200),
        ("suite", "audit.read", patient_id, 200),
        ("suite", "audit.read", None, 400),
    ]


@pytest.mark.parametrize(
    "path",
    ["/notifications", "/notifications/{notification_id}", "/patients/{patient_id}/notifications", "/audit"],
)
def test_a_notification_or_audit_read_whose_row_cannot_be_written_is_refused_with_503(
    client: Any, path: str
) -> None:
    created = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(DISTINCTIVE_PATIENT)).json_body
    url = path.format(patient_id=created["patient"]["id"], notification_id=created["notification_id"])

    with audit_trail_offline():
        response = client.http.get(url, headers=AUTH)

    assert_error(response, 503, "audit_unavailable")
    assert created["notification_id"] not in response.body.decode()
    assert_documented(get_document(client), path, "get", response)


def test_get_audit_needs_a_token_and_the_audit_read_scope(client: Any) -> None:
    assert_error(client.http.get("/audit"), 401, "unauthorized")

    def audit_as(scopes: str) -> dict[str, Any]:
        return invoke(
            lambda_event("GET", "/audit", "/audit", authorizer={"principal": "p", "scopes": scopes})
        )

    refused = audit_as("patients:read patients:write")
    allowed = audit_as("patients:read audit:read")

    assert refused["statusCode"] == 403
    assert json.loads(refused["body"])["code"] == "insufficient_scope"
    assert allowed["statusCode"] == 200
    # The refusal is in the trail it was refused.
    refusal = json.loads(allowed["body"])["events"]
    assert [(e["principal"], e["action"], e["status"]) for e in refusal] == [("p", "audit.read", 403)]


def test_audit_answers_match_the_openapi_document(client: Any) -> None:
    document = get_document(client)
    patient_id = create(client)
    client.http.get(f"/patients/{patient_id}", headers=AUTH)

    answers = [
        ("/audit", "get", client.http.get("/audit?per_page=1", headers=AUTH)),
        ("/audit", "get", client.http.get("/audit?since=never", headers=AUTH)),
        ("/audit", "get", client.http.get("/audit")),
    ]
    with audit_trail_offline():
        answers.append(
            ("/patients/{patient_id}", "get", client.http.get(f"/patients/{patient_id}", headers=AUTH))
        )

    assert [response.status_code for _, _, response in answers] == [200, 400, 401, 503]
    for path, method, response in answers:
        assert_documented(document, path, method, response)
    event = answers[0][2].json_body["events"][0]
    # chalice.test.Client sets no API Gateway requestId: the invocation's id stands in.
    assert event["action"] == "patient.read" and isinstance(event["request_id"], str)


def test_patients_a_service_discloses_are_recorded_with_the_wrappers_row(client: Any) -> None:
    # GIVEN answers whose service named the patients they showed (as a search page does)
    def answered(status: int, disclosed: list[int], request_id: str) -> None:
        context = AuditContext(principal="suite", action=LIST_PATIENTS, request_id=request_id)
        context.disclose(disclosed)
        record_outcome(UnitOfWork(), context, status, durable_reads=False)

    # WHEN the wrapper records them: a page of three (one twice), an empty page, a failed answer
    answered(200, [7, 3, 7, 9], "shown")
    answered(200, [], "empty")
    answered(500, [11], "failed")

    # THEN the page's row and its three patients are written together; nothing else is disclosed
    rows = {row["request_id"]: row["id"] for row in audit_rows()}
    assert set(rows) == {"shown", "empty", "failed"}
    assert disclosures() == [(3, rows["shown"]), (7, rows["shown"]), (9, rows["shown"])]
    trail = client.http.get("/audit?patient_id=9", headers=AUTH).json_body["events"]
    assert [event["request_id"] for event in trail] == ["shown"]


def test_a_row_whose_disclosures_cannot_be_written_is_not_written_either(client: Any) -> None:
    context = AuditContext(principal="suite", action=LIST_PATIENTS, request_id="page")
    context.disclose([1, 2])

    with disclosures_offline(), pytest.raises(Exception, match="disclosures offline"):
        record_outcome(UnitOfWork(), context, 200, durable_reads=False)

    # The wrapper answers 503 audit_unavailable then; the row did not commit without its disclosures.
    assert audit_rows() == [] and disclosures() == []


@sqlite_only
def test_the_trail_of_a_patient_is_read_on_indexes_only(client: Any) -> None:
    # GIVEN the statement GET /audit?patient_id= sends, with every filter
    sent: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "audit_disclosures" in statement:
            sent.append((statement, parameters))

    event.listen(get_engine(), "before_cursor_execute", note)
    try:
        query = "patient_id=5&principal=suite&since=2026-01-01&until=2027-01-01&before=99"
        assert client.http.get(f"/audit?{query}", headers=AUTH).status_code == 200
    finally:
        event.remove(get_engine(), "before_cursor_execute", note)

    # THEN SQLite walks the patient's index and the disclosures' primary key, and scans no table
    ((statement, parameters),) = sent
    with get_engine().connect() as connection:
        plan = [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    assert any(
        "audit_events USING INDEX ix_audit_events_patient_id_id (patient_id=? AND id<?)" in s for s in plan
    )
    assert any("audit_disclosures USING PRIMARY KEY (patient_id=? AND event_id<?)" in step for step in plan)
    assert not [step for step in plan if step.startswith("SCAN audit_")], plan
