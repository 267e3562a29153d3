"""POST /patients/search on SQLite and PostgreSQL: each criterion, accents and prefixes, AND, paging
by ``after``, the 400s naming the field, the scope, the audit row, and the document's examples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import chalice.test
import pytest
from sqlalchemy import select

from chalicelib.storage.database import get_engine
from chalicelib.storage.models import AuditDisclosure, AuditEvent, PatientNamePrefix, utc_now
from tests.helpers.api import assert_documented, assert_error, get_document, schema_validator
from tests.helpers.environment import configure_environment
from tests.helpers.tokens import JSON_AUTH

SEARCH = "/patients/search"


def create(client: Any, name: str, email: str, phone: str | None = None) -> int:
    body = {"name": name, "email": email, **({"phone": phone} if phone else {})}
    response = client.http.post("/patients", headers=JSON_AUTH, body=json.dumps(body))
    assert response.status_code == 201, response.body
    return int(response.json_body["patient"]["id"])


def search(client: Any, body: Any, headers: dict[str, str] = JSON_AUTH) -> Any:
    return client.http.post(SEARCH, headers=headers, body=json.dumps(body))


def found(client: Any, body: dict[str, Any]) -> list[int]:
    response = search(client, body)
    assert response.status_code == 200, response.body
    return [patient["id"] for patient in response.json_body["patients"]]


@pytest.fixture
def people(client: Any) -> dict[str, int]:
    return {
        "john": create(client, "John Doe", "john.doe@example.com", "123-456-7890"),
        "jöhn": create(client, "Jöhn Dőe", "JOHN.ACCENTED@Example.com"),
        "jane": create(client, "Jane Dorsey", "jane@example.com", "+44 20 7946 0958"),
        "joan": create(client, "Joan O'Brien-Smith", "joan@example.com"),
        "bob": create(client, "Bob Jones", "bob@example.com", "(212) 555-0100"),
    }


def test_name_words_match_word_prefixes_regardless_of_case_and_accents(
    client: Any, people: dict[str, int]
) -> None:
    assert found(client, {"name": "jo do"}) == [people["john"], people["jöhn"]]
    assert found(client, {"name": "JÖHN"}) == [people["john"], people["jöhn"]]
    # Word order does not matter; each query word may match any word of the name.
    assert found(client, {"name": "doe john"}) == [people["john"], people["jöhn"]]
    assert found(client, {"name": "do"}) == [people["john"], people["jöhn"], people["jane"]]
    # A prefix of a later word, apostrophes dropped, hyphens separating words.
    assert found(client, {"name": "obr"}) == [people["joan"]]
    assert found(client, {"name": "smi jo"}) == [people["joan"]]
    # Only word starts: "ohn" is inside John, not at the start of a word.
    assert found(client, {"name": "ohn"}) == []
    assert found(client, {"name": "jones"}) == [people["bob"]]


def test_a_query_of_many_words_matches_only_names_holding_them_all(client: Any) -> None:
    long_name = create(client, "Ana Bea Cia Dora Eva Fia Gia Hana", "many@example.com")
    create(client, "Ana Bea Cia Dora Eva Fia Gia", "fewer@example.com")

    assert found(client, {"name": "hana gia fia eva dora cia bea ana"}) == [long_name]
    assert found(client, {"name": "h g f e d c b a"}) == [long_name]
    assert found(client, {"name": "h g f e d c b a z"}) == []


def test_email_matches_as_the_uniqueness_rule_compares(client: Any, people: dict[str, int]) -> None:
    assert found(client, {"email": "John.Doe@EXAMPLE.com"}) == [people["john"]]
    assert found(client, {"email": "john.accented@example.com"}) == [people["jöhn"]]
    assert found(client, {"email": "john@example.com"}) == []
    # The right shape, but no address email-validator accepts: a 422, as on create.
    assert_error(search(client, {"email": "john@example"}), 422, "validation_failed", "email")


def test_phone_matches_in_e164_form(client: Any, people: dict[str, int]) -> None:
    assert found(client, {"phone": "(123) 456-7890"}) == [people["john"]]
    assert found(client, {"phone": "+1 123 456 7890"}) == [people["john"]]
    assert found(client, {"phone": "+442079460958"}) == [people["jane"]]
    assert found(client, {"phone": "212.555.0100"}) == [people["bob"]]
    assert_error(search(client, {"phone": "999"}), 422, "validation_failed", "phone")  # not possible


def test_created_and_updated_since(client: Any, people: dict[str, int]) -> None:
    later = utc_now() + timedelta(seconds=1)
    since = later.isoformat(timespec="microseconds") + "Z"
    assert found(client, {"created_since": "2000-01-01T00:00:00Z"}) == sorted(people.values())
    assert found(client, {"created_since": since}) == []
    assert found(client, {"updated_since": since}) == []

    # WHEN one patient changes after that moment
    while utc_now() <= later:
        pass
    changed = client.http.put(
        f"/patients/{people['bob']}", headers=JSON_AUTH, body=json.dumps({"phone": "+1 212 555 0199"})
    )
    assert changed.status_code == 200

    # THEN it alone was updated since, and none was created since
    assert found(client, {"updated_since": since}) == [people["bob"]]
    assert found(client, {"created_since": since}) == []


def test_criteria_combine_with_and(client: Any, people: dict[str, int]) -> None:
    assert found(client, {"name": "jo", "email": "john.doe@example.com"}) == [people["john"]]
    assert found(client, {"name": "jane", "email": "john.doe@example.com"}) == []
    assert found(client, {"name": "do", "phone": "+44 20 7946 0958"}) == [people["jane"]]
    assert found(client, {"name": "jo do", "created_since": "2000-01-01"}) == [people["john"], people["jöhn"]]


def test_a_renamed_patient_is_found_by_the_new_name_only_and_a_deleted_one_not_at_all(
    client: Any, people: dict[str, int]
) -> None:
    renamed = client.http.put(
        f"/patients/{people['bob']}", headers=JSON_AUTH, body=json.dumps({"name": "Robert Zyxwv"})
    )
    assert renamed.status_code == 200
    assert found(client, {"name": "zyx"}) == [people["bob"]]
    assert found(client, {"name": "bob"}) == []

    assert client.http.delete(f"/patients/{people['bob']}", headers=JSON_AUTH).status_code == 200
    assert found(client, {"name": "zyx"}) == []
    with get_engine().connect() as connection:
        left = connection.execute(
            select(PatientNamePrefix.prefix).where(PatientNamePrefix.patient_id == people["bob"])
        ).all()
    assert left == []  # the index forgets a deleted patient


def test_pages_follow_next_as_after_in_id_order(client: Any) -> None:
    ids = [create(client, f"Maria Garcia {i}", f"maria{i}@example.com") for i in range(5)]
    create(client, "Other Person", "other@example.com")

    seen: list[int] = []
    body: dict[str, Any] = {"name": "mar gar", "per_page": 2}
    pages = 0
    while True:
        response = search(client, body)
        assert response.status_code == 200, response.body
        answer = response.json_body
        pages += 1
        assert answer["per_page"] == 2 and "total" not in answer
        seen += [patient["id"] for patient in answer["patients"]]
        if answer["next"] is None:
            break
        assert answer["next"] == seen[-1]  # an id, never a URL carrying the criteria
        body = {**body, "after": answer["next"]}

    assert seen == ids
    assert pages == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "j"}, "name"),  # fewer than 2 characters in all
        ({"name": " j "}, "name"),
        ({"name": 7}, "name"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"phone": None}, "phone"),
        ({"created_since": "yesterday"}, "created_since"),
        ({"updated_since": 20260101}, "updated_since"),
        ({"name": "jo", "per_page": 101}, "per_page"),
        ({"name": "jo", "per_page": 0}, "per_page"),
        ({"name": "jo", "per_page": "20"}, "per_page"),
        ({"name": "jo", "after": -1}, "after"),
        ({"name": "jo", "after": True}, "after"),
        ({"name": "jo", "nickname": "Johnny"}, "nickname"),
    ],
)
def test_a_value_that_breaks_the_schema_is_a_400_naming_its_field(
    client: Any, body: dict[str, Any], field: str
) -> None:
    assert_error(search(client, body), 400, "validation_failed", field)


@pytest.mark.parametrize("body", [{}, {"per_page": 5}, {"after": 3}])
def test_no_criterion_is_a_400(client: Any, body: dict[str, Any]) -> None:
    response = search(client, body)
    assert_error(response, 400, "validation_failed")
    assert "name" in response.json_body["message"]


def test_whole_numbers_written_as_floats_are_integers_as_json_schema_says(
    client: Any, people: dict[str, int]
) -> None:
    assert found(client, {"name": "jo do", "per_page": 1.0, "after": 0.0}) == [people["john"]]
    assert_error(search(client, {"name": "jo", "per_page": 1.5}), 400, "validation_failed", "per_page")


def test_a_body_that_is_not_an_object_is_a_400(client: Any) -> None:
    response = client.http.post(SEARCH, headers=JSON_AUTH, body='["jo"]')
    assert_error(response, 400, "malformed_request")


def test_each_search_is_audited_with_the_patients_it_showed(client: Any, people: dict[str, int]) -> None:
    response = search(client, {"name": "jo do"})
    assert response.status_code == 200

    with get_engine().connect() as connection:
        table = AuditEvent.__table__
        rows = connection.execute(select(table).where(table.c.action == "patient.search")).all()
    assert [(row.principal, row.patient_id, row.status) for row in rows] == [("suite", None, 200)]


def test_the_answer_and_the_examples_fit_the_document(client: Any, people: dict[str, int]) -> None:
    document = get_document(client)
    response = search(client, {"name": "jo do", "per_page": 1})
    assert_documented(document, SEARCH, "post", response)
    assert response.json_body["next"] == people["john"]

    body_schema = schema_validator(document, "/components/schemas/PatientSearch")
    examples = document["components"]["schemas"]["PatientSearch"]["examples"]
    for example in examples:
        assert list(body_schema.iter_errors(example)) == []
        assert search(client, example).status_code == 200
    assert list(body_schema.iter_errors({})) != []  # no criterion breaks the schema too
    operation = document["paths"][SEARCH]["post"]
    assert operation["security"] == [{"bearerToken": ["patients:read"]}]
    assert "total" in operation["description"]


WRITER = "writer-only-token"


@pytest.fixture
def writer_client(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Iterator[chalice.test.Client]:
    configure_environment(
        monkeypatch, DATABASE_URL=sqlite_url, API_TOKENS=f"importer[patients:write]:{WRITER}"
    )
    from app import app

    with chalice.test.Client(app, stage_name="dev") as test_client:
        yield test_client


def test_a_write_only_token_cannot_search(writer_client: Any) -> None:
    headers = {"Authorization": f"Bearer {WRITER}", "Content-Type": "application/json"}
    assert_error(search(writer_client, {"name": "jo"}, headers), 403, "insufficient_scope")


def test_a_created_patient_links_to_searches_that_find_it(client: Any) -> None:
    document = get_document(client)
    links = document["paths"]["/patients"]["post"]["responses"]["201"]["links"]
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    created = client.http.post(
        "/patients", headers=JSON_AUTH, body=json.dumps({"name": "Zoë Quill", "email": "zq@example.com"})
    ).json_body["patient"]

    for link in links.values():
        assert link["operationId"] in operations
        # Resolve "$response.body#/patient/<field>" as a client would, and follow the link.
        body = {key: created[value.rsplit("/", 1)[-1]] for key, value in link["requestBody"].items()}
        assert found(client, body) == [created["id"]]


def test_the_page_s_patients_are_disclosed_on_the_request_s_audit_context(
    client: Any, people: dict[str, int]
) -> None:
    from chalicelib.audit.recording import SEARCH_PATIENTS, AuditContext
    from chalicelib.patients.search import search_patients
    from chalicelib.service_layer.unit_of_work import ReadTransaction

    audit = AuditContext(principal="suite", action=SEARCH_PATIENTS, request_id="r-1")
    page = search_patients(ReadTransaction(audit=audit), {"name": "jo do", "per_page": 1}, phone_region="US")

    # The search recorded its own row (the wrapper writes none), with the patients it showed: only
    # those shown, not the one the look-ahead row found beyond the page.
    assert audit.recorded
    with get_engine().connect() as connection:
        [event_id] = connection.execute(
            select(AuditEvent.id).where(AuditEvent.request_id == "r-1", AuditEvent.action == "patient.search")
        ).scalars()
        disclosed = connection.execute(
            select(AuditDisclosure.patient_id).where(AuditDisclosure.event_id == event_id)
        ).scalars()
        assert list(disclosed) == [people["john"]] == [patient.id for patient in page.patients]


def test_names_written_without_their_prefixes_are_found_after_a_reindex(
    client: Any, people: dict[str, int]
) -> None:
    from sqlalchemy import text

    from scripts.reindex_patient_names import reindex_patient_names

    # GIVEN a rename and a create by code that does not maintain the prefixes (before migration 0011)
    with get_engine().begin() as connection:
        connection.execute(
            text("UPDATE patients SET name = 'Quentin Ravel' WHERE id = :id"), {"id": people["bob"]}
        )
        connection.execute(
            text(
                "INSERT INTO patients (name, email, email_key, version, created_at, updated_at)"
                " VALUES ('Ursula Vey', 'u@example.com', 'u@example.com', 1, :t, :t)"
            ),
            {"t": utc_now()},
        )
    assert found(client, {"name": "qu ra"}) == [] and found(client, {"name": "bob"}) == [people["bob"]]

    # WHEN the reindex runs (twice: the second finds nothing left to correct)
    corrected = reindex_patient_names(get_engine())

    # THEN both are found by their names, the rename no longer by its old one
    assert (corrected, reindex_patient_names(get_engine())) == (2, 0)
    assert found(client, {"name": "qu ra"}) == [people["bob"]]
    assert found(client, {"name": "bob"}) == []
    assert len(found(client, {"name": "urs vey"})) == 1
