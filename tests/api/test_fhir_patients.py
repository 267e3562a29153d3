"""The FHIR R4 face: the same patients as FHIR Patient resources, every answer validated by
``fhir.resources`` (R4B models), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from chalicelib.scopes import SMART_SCOPES
from tests.helpers.fhir import (
    fhir_call,
    fhir_patient,
    outcome,
    telecom_of,
    validated,
)
from tests.helpers.patients import JANE, JOHN
from tests.helpers.tokens import JSON_AUTH


def create(
    client: Any, patient: dict[str, Any] = JANE, headers: dict[str, str] | None = None, **more: str
) -> Any:
    resource = fhir_patient(patient["name"], patient["email"], patient["phone"])
    return fhir_call(client, "POST", "/fhir/Patient", resource, {**(headers or {}), **more})


def test_metadata_lists_what_is_implemented_without_a_token(client: Any) -> None:
    # WHEN the CapabilityStatement is asked for, with no token
    response = client.http.get("/fhir/metadata")

    # THEN it is a valid R4 CapabilityStatement naming Patient's interactions and the SMART scopes
    assert response.status_code == 200
    statement = validated(response, "CapabilityStatement")
    assert statement["fhirVersion"] == "4.0.1"
    patient = statement["rest"][0]["resource"][0]
    assert {i["code"] for i in patient["interaction"]} == {
        "read",
        "vread",
        "update",
        "delete",
        "create",
        "search-type",
    }
    advertised = statement["rest"][0]["security"]["description"]
    assert all(scope in advertised for scope in SMART_SCOPES), "every scope the authorizer maps"


def test_create_then_read_as_a_fhir_patient(client: Any) -> None:
    # WHEN a FHIR Patient is created
    created = create(client)

    # THEN 201, the Patient as stored, its version in ETag, Location and meta
    assert created.status_code == 201, created.body
    resource = validated(created, "Patient")
    patient_id = resource["id"]
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"].endswith(f"/fhir/Patient/{patient_id}/_history/1")
    assert resource["meta"]["versionId"] == "1"
    assert resource["name"] == [{"text": JANE["name"]}]
    assert telecom_of(resource) == {"email": JANE["email"], "phone": JANE["phone"]}
    assert resource["identifier"][0]["value"] == patient_id

    # WHEN it is read
    read = fhir_call(client, "GET", f"/fhir/Patient/{patient_id}")

    # THEN the same Patient
    assert read.status_code == 200
    assert validated(read, "Patient") == resource
    assert read.headers["ETag"] == 'W/"1"'


def test_the_two_faces_agree(client: Any) -> None:
    # GIVEN a patient created through the JSON API, another through FHIR
    by_json = client.http.post("/patients", headers=JSON_AUTH, body=__import__("json").dumps(JOHN))
    json_id = by_json.json_body["patient"]["id"]
    by_fhir = validated(create(client), "Patient")

    # WHEN each is read through the other face
    as_fhir = validated(fhir_call(client, "GET", f"/fhir/Patient/{json_id}"), "Patient")
    as_json = client.http.get(f"/patients/{by_fhir['id']}", headers=JSON_AUTH)

    # THEN name, email, phone, version and timestamps agree
    stored = by_json.json_body["patient"]
    assert as_fhir["name"][0]["text"] == stored["name"]
    assert telecom_of(as_fhir) == {"email": stored["email"], "phone": stored["phone"]}
    assert as_fhir["meta"]["lastUpdated"] == stored["updated_at"]
    assert by_json.headers["ETag"] == f'"{json_id}-{as_fhir["meta"]["versionId"]}"'
    read = as_json.json_body
    assert (read["name"], read["email"], read["phone"]) == (JANE["name"], JANE["email"], JANE["phone"])
    assert read["updated_at"] == by_fhir["meta"]["lastUpdated"]
    assert as_json.headers["ETag"] == f'"{by_fhir["id"]}-{by_fhir["meta"]["versionId"]}"'


def test_a_fhir_read_is_in_the_audit_trail(client: Any) -> None:
    # GIVEN a patient, read through the FHIR face
    patient_id = validated(create(client), "Patient")["id"]
    fhir_call(client, "GET", f"/fhir/Patient/{patient_id}")

    # WHEN the trail of that patient is listed
    trail = client.http.get(f"/audit?patient_id={patient_id}", headers=JSON_AUTH).json_body["events"]

    # THEN the FHIR create and read are there, told apart from the JSON API's
    actions = [(event["action"], event["status"]) for event in trail]
    assert ("fhir.patient.read", 200) in actions
    assert ("fhir.patient.create", 201) in actions


def test_errors_are_operation_outcomes(client: Any) -> None:
    # an unknown patient, a non-numeric id: not-found
    outcome(fhir_call(client, "GET", "/fhir/Patient/424242"), 404, "not-found")
    outcome(fhir_call(client, "GET", "/fhir/Patient/abc"), 404, "not-found")
    # a duplicate email: conflict
    create(client)
    outcome(create(client), 409, "conflict")
    # a body that is no JSON: invalid
    bad = fhir_call(client, "POST", "/fhir/Patient", "{not json")
    outcome(bad, 400, "invalid")
    # an unknown query parameter, refused by the route wrapper: invalid, still an OperationOutcome
    diagnostics = outcome(fhir_call(client, "GET", "/fhir/Patient/1?_pretty=true"), 400, "invalid")
    assert "_pretty" in diagnostics
    # a telecom without a string value (a null phone would otherwise clear it unnoticed)
    null_phone = fhir_patient("A B", "ab@example.com")
    null_phone["telecom"].append({"system": "phone", "value": None})
    outcome(fhir_call(client, "POST", "/fhir/Patient", null_phone), 400, "invalid")
    # a _format that is not JSON
    outcome(fhir_call(client, "GET", "/fhir/metadata?_format=xml"), 400, "invalid")
    # an id that is not a string: ignored by a create when it is one, but not a Patient's id at all
    numeric_id = {**fhir_patient("C D", "cd@example.com"), "id": 112}
    outcome(fhir_call(client, "POST", "/fhir/Patient", numeric_id), 400, "invalid")


def test_elements_the_model_cannot_hold_are_refused_never_dropped(client: Any) -> None:
    for element, value in (
        ("birthDate", "1980-01-01"),
        ("gender", "female"),
        ("address", [{"city": "Springfield"}]),
        ("active", True),
    ):
        resource = {**fhir_patient(JANE["name"], JANE["email"]), element: value}
        response = fhir_call(client, "POST", "/fhir/Patient", resource)
        assert element in outcome(response, 422, "not-supported")
    # a name's parts are joined; a second name, a fax, an identifier of another system are refused
    joined = fhir_call(
        client,
        "POST",
        "/fhir/Patient",
        {
            "resourceType": "Patient",
            "name": [{"given": ["Mary", "Ann"], "family": "Smith"}],
            "telecom": [{"system": "email", "value": "mary@example.com"}],
        },
    )
    assert validated(joined, "Patient")["name"] == [{"text": "Mary Ann Smith"}]
    for refused in (
        {"name": [{"text": "A"}, {"text": "B"}]},
        {"telecom": [{"system": "fax", "value": "1"}]},
        {"identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}]},
        {"name": [{"text": "A", "use": "official"}]},
    ):
        resource = {**fhir_patient("X Y", "other@example.com"), **refused}
        outcome(fhir_call(client, "POST", "/fhir/Patient", resource), 422, "not-supported")


def test_vread_answers_the_current_version_only(client: Any) -> None:
    # GIVEN a patient at version 2
    patient_id = validated(create(client), "Patient")["id"]
    resource = {**fhir_patient("Jane Smith", JANE["email"]), "id": patient_id}
    assert fhir_call(client, "PUT", f"/fhir/Patient/{patient_id}", resource).status_code == 200

    # WHEN its versions are read
    current = fhir_call(client, "GET", f"/fhir/Patient/{patient_id}/_history/2")
    older = fhir_call(client, "GET", f"/fhir/Patient/{patient_id}/_history/1")

    # THEN the current one answers as a read; an older one is a 404 OperationOutcome
    assert current.status_code == 200
    assert validated(current, "Patient")["meta"]["versionId"] == "2"
    assert current.headers["ETag"] == 'W/"2"'
    assert "current version" in outcome(older, 404, "not-found")


def test_update_with_if_match_and_412_on_a_stale_version(client: Any) -> None:
    # GIVEN a patient at version 1
    patient_id = validated(create(client), "Patient")["id"]
    path = f"/fhir/Patient/{patient_id}"
    renamed = {**fhir_patient("Jane Smith", JANE["email"]), "id": patient_id}

    # WHEN it is updated naming version 1, then again naming version 1
    updated = fhir_call(client, "PUT", path, renamed, {"If-Match": 'W/"1"'})
    stale = fhir_call(client, "PUT", path, renamed, {"If-Match": 'W/"1"'})

    # THEN the first applies (a whole replacement: no phone now), the second is a 412 naming version 2
    assert updated.status_code == 200, updated.body
    resource = validated(updated, "Patient")
    assert (resource["meta"]["versionId"], resource["name"][0]["text"]) == ("2", "Jane Smith")
    assert telecom_of(resource) == {"email": JANE["email"]}
    outcome(stale, 412, "conflict")
    assert stale.headers["ETag"] == 'W/"2"'
    # an id in the body that is not the URL's (422: FHIR says 400, the document cannot), or none
    outcome(fhir_call(client, "PUT", path, {**renamed, "id": "999"}), 422, "invalid")
    outcome(fhir_call(client, "PUT", path, fhir_patient("A B", JANE["email"])), 400, "invalid")
    outcome(fhir_call(client, "PUT", path, renamed, {"If-Match": "version 2"}), 400, "invalid")


def test_delete(client: Any) -> None:
    patient_id = validated(create(client), "Patient")["id"]
    path = f"/fhir/Patient/{patient_id}"

    outcome(fhir_call(client, "DELETE", path, headers={"If-Match": 'W/"7"'}), 412, "conflict")
    deleted = fhir_call(client, "DELETE", path, headers={"If-Match": 'W/"1"'})

    assert deleted.status_code == 204
    outcome(fhir_call(client, "GET", path), 404, "not-found")
    outcome(fhir_call(client, "DELETE", path), 404, "not-found")


def test_conditional_create(client: Any) -> None:
    # GIVEN a patient
    first = validated(create(client), "Patient")

    # WHEN it is created again, conditionally on its email, then on its identifier
    by_email = create(client, headers={"If-None-Exist": f"email={JANE['email']}"})
    by_identifier = create(
        client, headers={"If-None-Exist": f"identifier=urn:telehealth-api:patient-id|{first['id']}"}
    )

    # THEN each answers the existing patient, 200, and creates none
    for response in (by_email, by_identifier):
        assert response.status_code == 200, response.body
        assert validated(response, "Patient")["id"] == first["id"]
    # and with no match, it creates
    other = create(client, JOHN, **{"If-None-Exist": f"email={JOHN['email']}"})
    assert other.status_code == 201
    # a parameter it cannot match on is refused
    refused = create(client, JOHN, **{"If-None-Exist": "birthdate=1980-01-01"})
    outcome(refused, 422, "not-supported")


def test_a_method_a_fhir_path_does_not_declare_is_an_operation_outcome(client: Any) -> None:
    response = fhir_call(client, "PATCH", "/fhir/Patient/1")

    outcome(response, 405, "not-supported")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PUT", "DELETE"}


def test_fhir_changes_send_the_same_notifications(client: Any) -> None:
    # GIVEN a patient created, then updated, through the FHIR face
    patient_id = validated(create(client), "Patient")["id"]
    resource = {**fhir_patient("Jane Smith", JANE["email"], JANE["phone"]), "id": patient_id}
    fhir_call(client, "PUT", f"/fhir/Patient/{patient_id}", resource)

    # WHEN its notifications are listed through the JSON API
    listed = client.http.get(f"/patients/{patient_id}/notifications", headers=JSON_AUTH).json_body

    # THEN they are the JSON API's: one per change
    events = sorted(n["event"] for n in listed["notifications"])
    assert events == ["patient.created", "patient.updated"]


def test_an_idempotency_key_makes_a_retried_fhir_create_answer_the_first(client: Any) -> None:
    key = {"Idempotency-Key": "fhir-retry-1"}

    first = create(client, **key)
    retried = create(client, **key)

    assert (first.status_code, retried.status_code) == (201, 201)
    assert validated(retried, "Patient")["id"] == validated(first, "Patient")["id"]
    assert retried.headers["Idempotent-Replayed"] == "true"
