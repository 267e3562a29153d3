"""FHIR search: GET without patient data, POST _search with a form body, sealed next links; every
Bundle and OperationOutcome validated by ``fhir.resources`` (R4B)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode, urlsplit

from tests.helpers.fhir import fhir_call, fhir_patient, outcome, telecom_of, validated
from tests.helpers.patients import DISTINCTIVE_FRAGMENTS, DISTINCTIVE_PATIENT, JANE, JOHN
from tests.helpers.tokens import AUTH, JSON_AUTH

FORM_AUTH = {**AUTH, "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/fhir+json"}


def create(client: Any, patient: dict[str, Any]) -> str:
    resource = fhir_patient(patient["name"], patient["email"], patient["phone"])
    response = fhir_call(client, "POST", "/fhir/Patient", resource)
    assert response.status_code == 201, response.body
    return str(response.json_body["id"] if response.json_body else validated(response, "Patient")["id"])


def search(client: Any, **form: str) -> Any:
    return client.http.post("/fhir/Patient/_search", headers=FORM_AUTH, body=urlencode(form))


def ids_of(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"]]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((item["url"] for item in bundle["link"] if item["relation"] == relation), None)


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_post_search_by_each_data_parameter(client: Any) -> None:
    # GIVEN two patients
    john, jane = create(client, JOHN), create(client, JANE)

    # WHEN searched by each parameter that carries patient data, in the form body
    found = {
        "name": search(client, name="jo do"),
        "family+given": search(client, family="Roe", given="Ja"),
        "email": search(client, email=JANE["email"].upper()),
        "phone": search(client, phone="(123) 456-7890"),
        "telecom email": search(client, telecom=f"email|{JOHN['email']}"),
        "telecom phone": search(client, telecom="phone|+14155550100"),
        "identifier": search(client, identifier=f"urn:telehealth-api:patient-id|{jane}"),
        "_id": search(client, _id=john),
    }

    # THEN each is a searchset Bundle of the one patient it names
    expected = {
        "name": [john],
        "family+given": [jane],
        "email": [jane],
        "phone": [john],
        "telecom email": [john],
        "telecom phone": [jane],
        "identifier": [jane],
        "_id": [john],
    }
    for label, response in found.items():
        assert response.status_code == 200, (label, response.body)
        bundle = validated(response, "Bundle")
        assert bundle["type"] == "searchset"
        assert ids_of(bundle) == expected[label], label
    resource = validated(found["email"], "Bundle")["entry"][0]["resource"]
    assert telecom_of(resource) == {"email": JANE["email"], "phone": JANE["phone"]}


def test_get_search_lists_pages_by_id_with_opaque_next_links(client: Any) -> None:
    # GIVEN three patients, one of them with distinctive data
    ids = [create(client, JOHN), create(client, JANE), create(client, DISTINCTIVE_PATIENT)]

    # WHEN all are listed two per page, following next
    first = validated(fhir_call(client, "GET", "/fhir/Patient?_count=2"), "Bundle")
    next_url = link(first, "next")
    assert next_url is not None
    second = validated(fhir_call(client, "GET", relative(next_url)), "Bundle")

    # THEN the pages hold the patients in id order, and the last has no next
    assert ids_of(first) + ids_of(second) == ids
    assert link(second, "next") is None
    assert link(first, "self").endswith("/fhir/Patient?_count=2")


def test_a_search_by_patient_data_pages_with_links_that_hold_none(client: Any) -> None:
    # GIVEN patients whose name shares a word
    for number in range(3):
        create(
            client,
            {**DISTINCTIVE_PATIENT, "email": f"zq{number}@clinic-example.org", "phone": None},
        )

    # WHEN searched by name, one per page, following next to the end
    response = search(client, name="Zelda Quixote", _count="1")
    pages = [validated(response, "Bundle")]
    while link(pages[-1], "next"):
        url = link(pages[-1], "next")
        assert url is not None
        # THEN no link carries the name, nor anything readable of it
        for fragment in (*DISTINCTIVE_FRAGMENTS, "name", "Zelda"):
            assert fragment.lower() not in url.lower(), url
        pages.append(validated(fhir_call(client, "GET", relative(url)), "Bundle"))
    assert [len(page["entry"]) for page in pages] == [1, 1, 1]
    assert all(
        fragment not in link(page, "self").lower() for page in pages for fragment in DISTINCTIVE_FRAGMENTS
    )


def test_a_continuation_is_the_servers_and_its_principals(client: Any, two_principals: Any) -> None:
    create(client, JOHN)
    create(client, JANE)
    first = validated(search(client, email=JOHN["email"], _count="1"), "Bundle")
    listed = validated(fhir_call(client, "GET", "/fhir/Patient?_count=1"), "Bundle")
    next_url = link(listed, "next")
    assert next_url is not None
    token = re.search(r"_cursor=([^&]+)", next_url).group(1)  # type: ignore[union-attr]

    # a changed continuation, another principal's, or one with other parameters: refused
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    outcome(fhir_call(client, "GET", f"/fhir/Patient?_cursor={tampered}"), 422, "invalid")
    from tests.helpers.tokens import OTHER_TOKEN

    other = fhir_call(client, "GET", relative(next_url), headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    outcome(other, 422, "invalid")
    outcome(fhir_call(client, "GET", f"{relative(next_url)}&_count=5"), 422, "invalid")
    assert link(first, "next") is None


def test_data_parameters_in_a_get_query_are_refused_pointing_to_search(client: Any) -> None:
    for name in ("name", "family", "given", "email", "phone", "telecom", "identifier", "birthdate"):
        # WHEN a data-bearing parameter is sent in the query of GET /fhir/Patient
        response = fhir_call(client, "GET", f"/fhir/Patient?{name}=Zelda")

        # THEN a 400 OperationOutcome says to use _search, and does not repeat the value
        diagnostics = outcome(response, 400, "invalid")
        assert "POST /fhir/Patient/_search" in diagnostics
        assert "Zelda" not in response.body.decode()


def test_search_refusals_are_operation_outcomes(client: Any) -> None:
    outcome(search(client, birthdate="1980-01-01"), 422, "not-supported")
    outcome(search(client, **{"name:exact": "John"}), 422, "not-supported")
    outcome(search(client, name="a,b"), 422, "not-supported")
    outcome(search(client, _lastUpdated="lt2026-01-01"), 422, "not-supported")
    outcome(search(client, identifier="urn:oid:1.2.3|MRN-1"), 422, "not-supported")
    # a form's values are strings its schema cannot describe whole: a value refused is a 422
    outcome(search(client, _count="0"), 422, "invalid")
    outcome(search(client, email="not-an-email"), 422, "invalid")
    outcome(search(client, name="x"), 422, "invalid")
    as_json = client.http.post("/fhir/Patient/_search", headers=JSON_AUTH, body='{"name": "jo"}')
    outcome(as_json, 415, "not-supported")
    outcome(fhir_call(client, "GET", "/fhir/Patient?_id=abc"), 400, "invalid")


def test_last_updated_and_the_audit_trail_of_searches(client: Any) -> None:
    # GIVEN a patient
    patient_id = create(client, JANE)

    # WHEN it is found by _lastUpdated and by _id, through GET and POST
    since = validated(fhir_call(client, "GET", "/fhir/Patient?_lastUpdated=ge2020-01-01"), "Bundle")
    later = validated(fhir_call(client, "GET", "/fhir/Patient?_lastUpdated=ge2999-01-01T00:00:00Z"), "Bundle")
    by_name = validated(search(client, name="Jane"), "Bundle")

    # THEN the searches found it, and the patient's trail holds the FHIR searches that disclosed it
    assert ids_of(since) == [patient_id] == ids_of(by_name)
    assert ids_of(later) == []
    trail = client.http.get(f"/audit?patient_id={patient_id}", headers=JSON_AUTH).json_body["events"]
    assert [event["action"] for event in trail].count("fhir.patient.search") >= 2
