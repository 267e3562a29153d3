"""Listing by cursor (``after``) beside page numbers, and the maintained total, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.tokens import AUTH, JSON_AUTH


def create(client: Any, index: int) -> int:
    body = {"name": f"Patient {index}", "email": f"p{index}@example.com"}
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(body))
    assert response.status_code == 201, response.body
    return int(response.json_body["patient"]["id"])


def get_list(client: Any, query: str) -> dict[str, Any]:
    response = client.http.get(f"/patients?{query}", headers=AUTH)
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def follow(client: Any, link: str) -> dict[str, Any]:
    assert link.startswith("/patients?")
    return get_list(client, link.partition("?")[2])


def test_following_next_walks_every_patient_once_in_id_order(client: Any) -> None:
    ids = [create(client, i) for i in range(7)]

    seen: list[int] = []
    body = get_list(client, "per_page=3")
    pages = 1
    while body["next"] is not None:
        seen += [p["id"] for p in body["patients"]]
        body = follow(client, body["next"])
        pages += 1
    seen += [p["id"] for p in body["patients"]]

    assert seen == ids
    assert pages == 3
    assert body["next"] is None  # absent on the last page
    assert (body["total"], body["pages"], body["current_page"], body["per_page"]) == (7, 3, None, 3)


def test_next_is_absent_when_the_last_page_is_exactly_full(client: Any) -> None:
    ids = [create(client, i) for i in range(4)]

    first = get_list(client, "per_page=2")
    last = follow(client, first["next"])

    assert first["next"] == f"/patients?after={ids[1]}&per_page=2"
    assert [p["id"] for p in last["patients"]] == ids[2:]
    assert last["next"] is None
    assert get_list(client, f"after={ids[-1]}")["patients"] == []


def test_cursor_and_page_numbers_give_the_same_pages(client: Any) -> None:
    ids = [create(client, i) for i in range(5)]

    by_number = get_list(client, "page=2&per_page=2")
    by_cursor = get_list(client, f"after={ids[1]}&per_page=2")
    from_zero = get_list(client, "after=0&per_page=2")

    assert by_number["patients"] == by_cursor["patients"]
    assert by_number["next"] == by_cursor["next"] == f"/patients?after={ids[3]}&per_page=2"
    assert by_number["current_page"] == 2 and by_cursor["current_page"] is None
    assert [p["id"] for p in from_zero["patients"]] == ids[:2]


def test_with_a_cursor_page_counts_pages_after_it(client: Any) -> None:
    # OpenAPI cannot forbid page with after, so the pair has a meaning instead of a 400.
    ids = [create(client, i) for i in range(7)]

    first_after = get_list(client, f"after={ids[0]}&page=1&per_page=2")
    third_after = get_list(client, f"after={ids[0]}&page=3&per_page=2")
    past_the_end = get_list(client, f"after={ids[0]}&page=4&per_page=2")

    assert [p["id"] for p in first_after["patients"]] == ids[1:3]
    assert first_after == get_list(client, f"after={ids[0]}&per_page=2")
    assert [p["id"] for p in third_after["patients"]] == ids[5:7]
    assert (third_after["current_page"], third_after["next"]) == (None, None)
    assert past_the_end["patients"] == [] and past_the_end["total"] == 7
    assert (
        get_list(client, "page=2&after=0&per_page=2")["patients"]
        == get_list(client, "page=2&per_page=2")["patients"]
    )


def test_cursor_is_stable_when_earlier_patients_are_deleted(client: Any) -> None:
    # GIVEN a reader part-way through the list
    ids = [create(client, i) for i in range(6)]
    first = get_list(client, "per_page=2")

    # WHEN patients it has already seen are deleted and a new one is added
    for patient_id in ids[:2]:
        assert client.http.delete(f"/patients/{patient_id}", headers=AUTH).status_code == 200
    newest = create(client, 99)

    # THEN the cursor neither skips nor repeats (page 2 by number would now skip ids[2:4])
    second = follow(client, first["next"])
    third = follow(client, second["next"])
    assert [p["id"] for p in second["patients"]] == ids[2:4]
    assert [p["id"] for p in third["patients"]] == [*ids[4:], newest][:2]
    assert get_list(client, "page=2&per_page=2")["patients"][0]["id"] == ids[4]


def test_total_follows_creates_and_deletes(client: Any) -> None:
    ids = [create(client, i) for i in range(3)]
    client.http.delete(f"/patients/{ids[0]}", headers=AUTH)
    client.http.delete(f"/patients/{ids[0]}", headers=AUTH)  # a second delete of the same id is a 404
    client.http.post(
        "/patients", headers=JSON_AUTH, body=json.dumps({"name": "Dup", "email": "p1@example.com"})
    )

    body = get_list(client, "")

    assert (body["total"], body["pages"]) == (2, 1)


@pytest.mark.parametrize(
    "query",
    [
        "after=abc",
        "after=-1",
        "after=1.5",
        "after=",
        "after=%C2%B2",
        "after=1e3",
        "after=9223372036854775808",
        "after=" + "9" * 5000,
    ],
)
def test_bad_cursor_is_400_naming_after(client: Any, query: str) -> None:
    response = client.http.get(f"/patients?{query}", headers=AUTH)

    assert response.status_code == 400, response.body
    assert response.json_body["code"] == "validation_failed"
    assert response.json_body["field"] == "after"


def test_huge_page_number_is_400_not_500(client: Any) -> None:
    response = client.http.get("/patients?page=" + "9" * 5000, headers=AUTH)

    assert response.status_code == 400
    assert response.json_body["field"] == "page"
