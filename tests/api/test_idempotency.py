"""Idempotency-Key on POST /patients, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from chalicelib import bootstrap
from chalicelib.audit.recording import utc_now
from chalicelib.patients.idempotency import purge_expired_keys
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.database import get_engine
from tests.helpers.api import assert_documented, assert_error, get_document
from tests.helpers.patients import JANE, JOHN
from tests.helpers.tokens import AUTH, JSON_AUTH, OTHER_TOKEN, TEST_TOKEN


def post_keyed(client: Any, key: str, body: Any, token: str = TEST_TOKEN) -> Any:
    headers = {**JSON_AUTH, "Authorization": f"Bearer {token}", "Idempotency-Key": key}
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.http.post("/patients", headers=headers, body=raw)


def total(client: Any) -> int:
    return int(client.http.get("/patients", headers=AUTH).json_body["total"])


def key_rows() -> list[Any]:
    with get_engine().connect() as connection:
        return list(connection.execute(text("SELECT principal, key, patient_id FROM idempotency_keys")))


def expire_keys() -> None:
    with get_engine().begin() as connection:
        connection.execute(text("UPDATE idempotency_keys SET expires_at = :past"), {"past": utc_now()})


def test_a_retry_replays_the_first_answer_without_a_second_patient(client: Any) -> None:
    first = post_keyed(client, "key-1", JOHN)
    # The same body, differently written: key order and whitespace do not matter.
    retry = post_keyed(client, "key-1", json.dumps(dict(reversed(list(JOHN.items()))), indent=2))

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.body == first.body
    patient_id = first.json_body["patient"]["id"]
    assert retry.headers["ETag"] == first.headers["ETag"] == f'"{patient_id}-1"'
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Cache-Control"] == "no-store"
    assert total(client) == 1


def test_a_replay_after_a_change_answers_the_patient_as_it_is_now(client: Any) -> None:
    # GIVEN a keyed create, then a change of every field the create set
    first = post_keyed(client, "key-1", JOHN)
    patient_id = first.json_body["patient"]["id"]
    changed = {**JANE, "phone": "+1 212 555 0123"}
    updated = client.http.put(f"/patients/{patient_id}", headers=JSON_AUTH, body=json.dumps(changed))

    # WHEN the create is retried
    retry = post_keyed(client, "key-1", JOHN)

    # THEN it answers the current record, never the superseded name, email or phone
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json_body["patient"] == updated.json_body["patient"]
    assert retry.json_body["notification_id"] == first.json_body["notification_id"]
    assert retry.headers["ETag"] == updated.headers["ETag"] == f'"{patient_id}-2"'
    for value in (JOHN["name"], JOHN["email"], "456-7890"):
        assert value not in retry.body.decode()
    assert total(client) == 1


def test_key_rows_hold_ids_and_no_patient_data(client: Any) -> None:
    post_keyed(client, "key-1", JOHN)

    with get_engine().connect() as connection:
        stored = " ".join(
            str(value) for row in connection.execute(text("SELECT * FROM idempotency_keys")) for value in row
        )

    for value in (JOHN["name"], JOHN["email"], "456-7890"):
        assert value not in stored


def test_a_key_whose_patient_is_gone_is_taken_afresh(client: Any) -> None:
    # GIVEN a key row left behind by a delete made outside the API (the API's delete forgets keys)
    first = post_keyed(client, "key-1", JOHN)
    with get_engine().begin() as connection:
        connection.execute(text("DELETE FROM patients"))

    # WHEN the create is retried THEN it creates again instead of answering a patient that is gone
    again = post_keyed(client, "key-1", JOHN)

    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json_body["patient"]["id"] != first.json_body["patient"]["id"]
    assert [row.patient_id for row in key_rows()] == [again.json_body["patient"]["id"]]


def test_the_same_key_with_another_body_is_422_and_creates_nothing(client: Any) -> None:
    post_keyed(client, "key-1", JOHN)

    response = post_keyed(client, "key-1", {**JOHN, "email": "other@example.com"})

    assert_error(response, 422, "idempotency_key_reused", "Idempotency-Key")
    assert "other@example.com" not in response.body.decode()
    assert total(client) == 1


def test_keys_belong_to_their_principal(two_principals: Any) -> None:
    client = two_principals
    mine = post_keyed(client, "shared-key", JOHN)

    theirs = post_keyed(client, "shared-key", {**JOHN, "email": "theirs@example.com"}, token=OTHER_TOKEN)

    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.json_body["patient"]["id"] != mine.json_body["patient"]["id"]
    assert sorted(row.principal for row in key_rows()) == ["other", "suite"]


def test_without_a_key_every_create_is_new(client: Any) -> None:
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(JOHN))

    again = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(JOHN))

    assert_error(again, 409, "duplicate_email")
    assert key_rows() == []


@pytest.mark.parametrize("key", ["", "k" * 256, "clé", "tab\there", "line\nbreak", "\x7f"])
def test_a_malformed_key_is_400_and_creates_nothing(client: Any, key: str) -> None:
    assert_error(post_keyed(client, key, JOHN), 400, "validation_failed", "Idempotency-Key")
    assert total(client) == 0


def test_the_longest_printable_key_is_accepted(client: Any) -> None:
    key = "".join(chr(32 + i % 95) for i in range(255))

    assert post_keyed(client, key, JOHN).status_code == 201
    assert post_keyed(client, key, JOHN).headers["Idempotent-Replayed"] == "true"


def test_a_failed_create_does_not_use_up_its_key(client: Any) -> None:
    client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(JOHN))

    duplicate = post_keyed(client, "key-1", JOHN)
    invalid = post_keyed(client, "key-1", {"name": "A"})
    fixed = post_keyed(client, "key-1", {**JOHN, "email": "fixed@example.com"})

    assert (duplicate.status_code, invalid.status_code, fixed.status_code) == (409, 400, 201)
    assert "Idempotent-Replayed" not in fixed.headers


def test_an_expired_key_is_replaced_by_a_new_create(client: Any) -> None:
    first = post_keyed(client, "key-1", JOHN)
    expire_keys()

    later = post_keyed(client, "key-1", {**JOHN, "email": "later@example.com"})

    assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers
    assert later.json_body["patient"]["id"] != first.json_body["patient"]["id"]
    assert [row.patient_id for row in key_rows()] == [later.json_body["patient"]["id"]]


def test_deleting_the_patient_forgets_its_keys(client: Any) -> None:
    first = post_keyed(client, "key-1", JOHN)
    client.http.delete(f"/patients/{first.json_body['patient']['id']}", headers=AUTH)

    assert key_rows() == []
    # A retry after the delete is a new create: the deleted record is never answered.
    again = post_keyed(client, "key-1", JOHN)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json_body["patient"]["id"] != first.json_body["patient"]["id"]
    assert total(client) == 1


def test_purge_deletes_only_expired_keys(client: Any) -> None:
    post_keyed(client, "old", JOHN)
    expire_keys()
    post_keyed(client, "new", {**JOHN, "email": "new@example.com"})

    assert purge_expired_keys(UnitOfWork()) == 1
    assert [row.key for row in key_rows()] == ["new"]
    assert purge_expired_keys(UnitOfWork(), utc_now() + timedelta(days=2)) == 1
    assert key_rows() == []


def test_idempotent_answers_match_the_openapi_document(client: Any) -> None:
    document = get_document(client)

    answers = [
        post_keyed(client, "k", JOHN),
        post_keyed(client, "k", JOHN),
        post_keyed(client, "k", {"name": "B"}),
    ]
    answers.append(post_keyed(client, "k" * 256, JOHN))

    assert [response.status_code for response in answers] == [201, 201, 400, 400]
    answers.append(post_keyed(client, "k", {**JOHN, "name": "Other"}))
    assert answers[-1].status_code == 422
    for response in answers:
        assert_documented(document, "/patients", "post", response)
    create = document["paths"]["/patients"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}
    assert set(create["responses"]["201"]["headers"]) == {"ETag", "Idempotent-Replayed"}


def canonical_body(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def test_the_table_holds_an_hmac_of_the_body_never_its_plain_hash(client: Any) -> None:
    # GIVEN a keyed create
    post_keyed(client, "key-1", JOHN)

    # WHEN someone who can read the table tries the guessed body against what it holds
    with get_engine().connect() as connection:
        [stored] = connection.execute(text("SELECT request_sha256 FROM idempotency_keys")).scalars()
    guessed = canonical_body(JOHN)

    # THEN the plain SHA-256 of the body does not confirm it; only the server's key does
    assert stored != hashlib.sha256(guessed).hexdigest()
    secret = bootstrap.patient_settings().idempotency_key_secret
    assert stored == hmac.new(secret, guessed, hashlib.sha256).hexdigest()


def test_a_key_stored_with_the_plain_hash_before_the_hmac_still_answers_its_retry(client: Any) -> None:
    # GIVEN a key row as the deployment before the HMAC wrote it (its digest a plain SHA-256)
    first = post_keyed(client, "key-1", JOHN)
    with get_engine().begin() as connection:
        connection.execute(
            text("UPDATE idempotency_keys SET request_sha256 = :legacy"),
            {"legacy": hashlib.sha256(canonical_body(JOHN)).hexdigest()},
        )

    # WHEN the client retries within the day THEN it is a replay, and another body is still refused
    retry = post_keyed(client, "key-1", JOHN)
    assert (retry.status_code, retry.headers.get("Idempotent-Replayed")) == (201, "true")
    assert retry.json_body["patient"]["id"] == first.json_body["patient"]["id"]
    assert_error(post_keyed(client, "key-1", JANE), 422, "idempotency_key_reused")
