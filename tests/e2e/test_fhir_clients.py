"""FHIR clients nobody here wrote, against one live ``chalice local``: SMART on FHIR's fhirclient and fhirpy.

Each reads the CapabilityStatement, then creates, reads, updates with the version it read
(``If-Match``), searches and deletes a patient, with the suite's bearer token. Both share one
server (a module fixture): starting it is the slow part.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fhirclient import client as fhirclient
from fhirclient.models.contactpoint import ContactPoint
from fhirclient.models.fhirsearch import FHIRSearch
from fhirclient.models.humanname import HumanName
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRUnauthorizedException
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, MultipleResourcesFound, ResourceNotFound

from chalicelib.storage.migrate import upgrade_database
from scripts.api_process import free_port, running_server, stock_chalice_command
from tests.helpers.patients import JANE, JOHN
from tests.helpers.tokens import SUITE_TOKENS, TEST_TOKEN

BEARER = f"Bearer {TEST_TOKEN}"


@pytest.fixture(scope="module")
def fhir_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Stock ``chalice local`` on a migrated SQLite file with the suite's tokens: its FHIR base URL."""
    directory = tmp_path_factory.mktemp("fhir-clients")
    database = f"sqlite:///{directory / 'telehealth.db'}"
    upgrade_database(database)
    env = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN_SHA256", "APP_STAGE", "REDIS_URL")}
    env.update(DATABASE_URL=database, API_TOKENS=SUITE_TOKENS)
    port = free_port()
    with running_server(stock_chalice_command(port), port, env, directory / "server.log"):
        yield f"http://127.0.0.1:{port}/fhir/"
    assert b"Traceback" not in (directory / "server.log").read_bytes()


def version_of(resource: Any) -> str:
    return str(resource.meta.versionId)


def test_fhirclient_reads_the_capability_statement_then_creates_reads_updates_searches_and_deletes(
    fhir_base: str,
) -> None:
    # GIVEN SMART on FHIR's client, prepared against our server, carrying the suite's token
    smart = fhirclient.FHIRClient(settings={"app_id": "telehealth-e2e", "api_base": fhir_base})
    server = smart.server
    server.session.headers["Authorization"] = BEARER

    # WHEN it reads the CapabilityStatement (no token needed: it is read before any)
    assert smart.prepare()
    capability = server.capabilityStatement
    # THEN it names FHIR R4 and the Patient interactions it will use
    assert capability.fhirVersion.startswith("4.0")
    (patient_support,) = [r for r in capability.rest[0].resource if r.type == "Patient"]
    interactions = {i.code for i in patient_support.interaction}
    assert {"read", "create", "update", "delete", "search-type"} <= interactions

    # WHEN it creates a patient
    patient = Patient(
        {
            "resourceType": "Patient",
            "name": [{"text": JOHN["name"]}],
            "telecom": [
                {"system": "email", "value": JOHN["email"]},
                {"system": "phone", "value": JOHN["phone"]},
            ],
        }
    )
    created = patient.create(server)
    # THEN the server answers the patient with its id and first version
    assert created is not None and created["resourceType"] == "Patient"
    patient_id = created["id"]

    # WHEN it reads it back
    read = Patient.read(patient_id, server)
    assert read.name[0].text == JOHN["name"]
    assert {(t.system, t.value) for t in read.telecom} >= {("email", JOHN["email"])}
    version = version_of(read)

    # WHEN it updates it, sending the version it read (fhirclient has no If-Match of its own: its session)
    read.name = [HumanName({"text": "John Q. Doe"})]
    read.telecom = [ContactPoint({"system": "email", "value": JOHN["email"]})]
    server.session.headers["If-Match"] = f'W/"{version}"'
    try:
        updated = read.update(server)
    finally:
        del server.session.headers["If-Match"]
    assert updated is not None and updated["meta"]["versionId"] != version
    assert Patient.read(patient_id, server).name[0].text == "John Q. Doe"

    # WHEN it searches by id
    found = list(FHIRSearch(Patient, {"_id": patient_id}).perform_resources_iter(server))
    assert [p.id for p in found] == [patient_id]

    # WHEN it deletes it
    read.delete(server)
    # THEN a read is refused, and so is a request without the token, in FHIR's shape to FHIR's client
    assert list(FHIRSearch(Patient, {"_id": patient_id}).perform_resources_iter(server)) == []
    del server.session.headers["Authorization"]
    with pytest.raises(FHIRUnauthorizedException) as refused:
        Patient.read(patient_id, server)
    assert refused.value.response.json()["resourceType"] == "OperationOutcome"


def test_fhirpy_reads_the_capability_statement_then_creates_reads_updates_searches_and_deletes(
    fhir_base: str,
) -> None:
    # GIVEN fhirpy's synchronous client with the suite's token
    client = SyncFHIRClient(fhir_base, authorization=BEARER)

    # WHEN it reads the CapabilityStatement
    capability = client.execute("metadata", method="get")
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"].startswith("4.0")

    # WHEN it creates a patient
    patient = client.resource(
        "Patient",
        name=[{"text": JANE["name"]}],
        telecom=[{"system": "email", "value": JANE["email"]}, {"system": "phone", "value": JANE["phone"]}],
    )
    patient.save()
    assert patient.id
    version = patient["meta"]["versionId"]

    # WHEN it reads it
    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["text"] == JANE["name"]
    assert read["meta"]["versionId"] == version

    # WHEN it updates it with the version it read (a client whose requests carry If-Match)
    versioned = SyncFHIRClient(fhir_base, authorization=BEARER, extra_headers={"If-Match": f'W/"{version}"'})
    renamed = versioned.resource(
        "Patient", id=patient.id, name=[{"text": "Jane Q. Roe"}], telecom=read["telecom"]
    )
    renamed.save()
    assert renamed["meta"]["versionId"] != version
    # AND the same version again is refused: it is no longer the current one
    stale = versioned.resource("Patient", id=patient.id, name=[{"text": "Stale"}], telecom=read["telecom"])
    with pytest.raises(MultipleResourcesFound) as refused:  # fhirpy's name for any 412
        stale.save()
    (issue,) = json.loads(str(refused.value))["issue"]
    assert issue["code"] == "conflict"

    # WHEN it searches by id
    found = client.resources("Patient").search(_id=patient.id).fetch()
    assert [p.id for p in found] == [patient.id]
    assert found[0]["name"][0]["text"] == "Jane Q. Roe"

    # WHEN it deletes it
    client.delete("Patient", patient.id)
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", patient.id).to_resource()
    # AND without the token it is refused before any handler, as an OperationOutcome
    with pytest.raises(AuthorizationError, match="OperationOutcome"):
        SyncFHIRClient(fhir_base).reference("Patient", patient.id).to_resource()
    # AND a resource type not served is the gateway's unknown route, as an OperationOutcome too
    with pytest.raises(ResourceNotFound) as unknown:
        client.reference("Observation", "1").to_resource()
    assert json.loads(str(unknown.value))["issue"][0]["code"] == "not-found"
