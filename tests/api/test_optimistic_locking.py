"""ETag and If-Match / If-None-Match on the patient routes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.patients.preconditions import etag_for
from tests.helpers.api import assert_documented, assert_error, get_document, post
from tests.helpers.patients import JOHN
from tests.helpers.tokens import AUTH, JSON_AUTH


def create(client: Any) -> tuple[str, Any]:
    response = post(client, JOHN)
    assert response.status_code == 201, response.body
    return f"/patients/{response.json_body['patient']['id']}", response


def tag(path: str, version: int, *, weak: bool = False) -> str:
    """The ETag of version ``version`` of the patient at ``path``."""
    etag = etag_for(int(path.rsplit("/", 1)[1]), version)
    return f"W/{etag}" if weak else etag


def put_if(client: Any, path: str, if_match: str | None, body: dict[str, Any]) -> Any:
    headers = JSON_AUTH if if_match is None else {**JSON_AUTH, "If-Match": if_match}
    return client.http.put(path, headers=headers, body=json.dumps(body))


def test_create_get_and_update_carry_the_version_as_a_strong_etag(client: Any) -> None:
    path, created = create(client)

    fetched = client.http.get(path, headers=AUTH)
    updated = put_if(client, path, None, {"name": "Renamed"})

    patient_id = path.rsplit("/", 1)[1]
    assert created.headers["ETag"] == f'"{patient_id}-1"'
    assert fetched.headers["ETag"] == f'"{patient_id}-1"'
    assert updated.headers["ETag"] == f'"{patient_id}-2"'
    assert client.http.get(path, headers=AUTH).headers["ETag"] == f'"{patient_id}-2"'


def test_put_with_the_current_etag_changes_the_patient(client: Any) -> None:
    path, created = create(client)

    response = put_if(client, path, created.headers["ETag"], {"name": "Renamed"})

    assert response.status_code == 200
    assert response.json_body["patient"]["name"] == "Renamed"


def test_put_with_a_stale_etag_is_412_and_changes_nothing(client: Any) -> None:
    path, created = create(client)
    put_if(client, path, None, {"phone": None})  # now version 2
    before = client.http.get(path, headers=AUTH).json_body

    response = put_if(client, path, created.headers["ETag"], {"name": "Lost Update"})

    assert_error(response, 412, "precondition_failed")
    assert "Lost Update" not in response.body.decode()
    # the refusal names the version that is current, so the client need not read it again
    assert response.headers["ETag"] == tag(path, 2)
    assert_documented(get_document(client), "/patients/{patient_id}", "put", response)
    assert client.http.get(path, headers=AUTH).json_body == before


@pytest.mark.parametrize(
    "if_match, status",
    [
        (lambda path: f"{tag(path, 9)}, {tag(path, 1)}", 200),
        (lambda path: tag(path, 1, weak=True), 412),
        (lambda path: tag(path, 2), 412),
        (lambda path: "*", 200),
        (lambda path: tag(path, 1).replace("-1", "-01"), 412),
        # The version alone, or another patient's tag of the same version, is not this patient's tag.
        (lambda path: '"1"', 412),
        (lambda path: etag_for(int(path.rsplit("/", 1)[1]) + 1, 1), 412),
    ],
)
def test_put_if_match_lists_weak_tags_and_star(client: Any, if_match: Any, status: int) -> None:
    path, _ = create(client)

    assert put_if(client, path, if_match(path), {"name": "B"}).status_code == status


@pytest.mark.parametrize("if_match", ["1", '"1', "", "W/1", '"1" "2"'])
def test_malformed_if_match_is_400_naming_the_header(client: Any, if_match: str) -> None:
    path, _ = create(client)

    assert_error(put_if(client, path, if_match, {"name": "B"}), 400, "validation_failed", "If-Match")
    assert_error(client.http.delete(path, headers={**AUTH, "If-Match": if_match}), 400, "validation_failed")
    assert client.http.get(path, headers=AUTH).json_body["name"] == JOHN["name"]


def test_delete_with_a_stale_etag_is_412_and_keeps_the_patient(client: Any) -> None:
    path, _ = create(client)
    put_if(client, path, None, {"name": "B"})

    refused = client.http.delete(path, headers={**AUTH, "If-Match": tag(path, 1)})
    assert_error(refused, 412, "precondition_failed")
    assert refused.headers["ETag"] == tag(path, 2)
    assert client.http.get(path, headers=AUTH).status_code == 200

    assert client.http.delete(path, headers={**AUTH, "If-Match": tag(path, 2)}).status_code == 200
    assert client.http.get(path, headers=AUTH).status_code == 404


def test_missing_patient_is_404_whatever_if_match_says(client: Any) -> None:
    # RFC 9110 13.2.1: preconditions are ignored when the answer without them would not be 2xx.
    for if_match in ("*", '"424242-1"'):
        assert_error(put_if(client, "/patients/424242", if_match, {"name": "B"}), 404, "patient_not_found")
        response = client.http.delete("/patients/424242", headers={**AUTH, "If-Match": if_match})
        assert_error(response, 404, "patient_not_found")


def test_without_if_match_updates_are_unconditional_as_in_the_seed(client: Any) -> None:
    path, _ = create(client)

    assert put_if(client, path, None, {"name": "B"}).status_code == 200
    assert put_if(client, path, None, {"name": "C"}).status_code == 200


def test_if_none_match_with_the_current_etag_is_304_without_body(client: Any) -> None:
    path, created = create(client)

    not_modified = client.http.get(path, headers={**AUTH, "If-None-Match": created.headers["ETag"]})
    weak = client.http.get(path, headers={**AUTH, "If-None-Match": tag(path, 1, weak=True)})
    put_if(client, path, None, {"name": "B"})
    modified = client.http.get(path, headers={**AUTH, "If-None-Match": created.headers["ETag"]})

    assert not_modified.status_code == 304 and weak.status_code == 304
    assert not_modified.body == b""
    assert not_modified.headers["ETag"] == tag(path, 1)
    assert not_modified.headers["Cache-Control"] == "no-store"
    assert modified.status_code == 200 and modified.json_body["name"] == "B"
    assert modified.headers["ETag"] == tag(path, 2)


def test_malformed_if_none_match_is_400(client: Any) -> None:
    path, _ = create(client)

    response = client.http.get(path, headers={**AUTH, "If-None-Match": "nope"})

    assert_error(response, 400, "validation_failed", "If-None-Match")


def test_conditional_answers_match_the_openapi_document(client: Any) -> None:
    document = get_document(client)
    path, _ = create(client)
    item = "/patients/{patient_id}"

    answers = [
        (item, "put", put_if(client, path, tag(path, 9), {"name": "B"})),
        (item, "put", put_if(client, path, "junk", {"name": "B"})),
        (item, "delete", client.http.delete(path, headers={**AUTH, "If-Match": tag(path, 9)})),
        (item, "get", client.http.get(path, headers={**AUTH, "If-None-Match": "junk"})),
        (item, "put", put_if(client, path, tag(path, 1), {"name": "B"})),
    ]

    assert [response.status_code for _, _, response in answers] == [412, 400, 412, 400, 200]
    for documented_path, method, response in answers:
        assert_documented(document, documented_path, method, response)
    operations = document["paths"][item]
    assert {p["name"] for p in operations["put"]["parameters"]} >= {"If-Match"}
    assert {p["name"] for p in operations["delete"]["parameters"]} >= {"If-Match"}
    assert {p["name"] for p in operations["get"]["parameters"]} >= {"If-None-Match"}
    assert "ETag" in operations["get"]["responses"]["200"]["headers"]
    assert "ETag" in operations["put"]["responses"]["200"]["headers"]
    not_modified = operations["get"]["responses"]["304"]
    assert "content" not in not_modified and "ETag" in not_modified["headers"]


def test_a_deleted_patients_id_url_and_etag_never_lead_to_the_next_patient(client: Any) -> None:
    # GIVEN a client that read the newest patient and holds its ETag, and the patient then deleted
    first_path, first = create(client)
    assert client.http.delete(first_path, headers=AUTH).status_code == 200

    # WHEN another patient is created
    second = post(client, {**JOHN, "email": "second@example.com"})
    second_path = f"/patients/{second.json_body['patient']['id']}"

    # THEN it gets a new id: the client's URL and ETag answer 404, never 304 for the new patient
    assert second_path != first_path
    revalidated = client.http.get(first_path, headers={**AUTH, "If-None-Match": first.headers["ETag"]})
    assert revalidated.status_code == 404
    # and the old ETag matches no other patient: a full answer, never a 304, a 412 for a change
    old_tag = {"If-None-Match": first.headers["ETag"]}
    assert client.http.get(second_path, headers={**AUTH, **old_tag}).status_code == 200
    assert put_if(client, second_path, first.headers["ETag"], {"name": "B"}).status_code == 412
    # and the new patient's notification history holds only its own creation
    history = client.http.get(f"{second_path}/notifications", headers=AUTH).json_body
    assert [n["event"] for n in history["notifications"]] == ["patient.created"]
