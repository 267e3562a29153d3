"""The packaged artifact serves every endpoint with nothing on its import path but itself.

deployment.zip is unzipped into an empty, read-only directory and run by a
stand-in for the Lambda runtime (``lambda_runtime.py``) under ``python -I -S``:
no site-packages, no project checkout. A module a handler imports that the
artifact lacks (aws/chalice#1554) fails here, as it would in Lambda.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.config.tokens import token_sha256
from chalicelib.storage.migrate import upgrade_database
from deploy.gateway_responses import select_operation
from deploy.lambda_events import authorizer_context, rest_event, token_event
from deploy.lambda_runtime import InvocationError, LambdaContainer, lambda_environment
from deploy.package import PackageOutput
from tests.helpers.api import app_routes
from tests.helpers.patients import JOHN

TOKEN = "artifact-test-token"
BEARER = f"Bearer {TOKEN}"
PATIENT = {**JOHN, "phone": "+44 20 7946 0958"}  # an international number, parsed in the artifact
ITEM = "/patients/{patient_id}"
FHIR_ITEM = "/fhir/Patient/{patient_id}"
FHIR_JSON = "application/fhir+json"
FHIR_EMAIL = "ada@example.com"
FHIR_PATIENT = {
    "resourceType": "Patient",
    "name": [{"text": "Ada Lovelace"}],
    "telecom": [{"system": "email", "value": FHIR_EMAIL}],
}
API = "app.app"
AUTHORIZER = "app.authorize_bearer_token"


@pytest.fixture(scope="module")
def function_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The container's log stream, where the runtime's root handler writes."""
    return tmp_path_factory.mktemp("artifact-log") / "function.log"


@pytest.fixture(scope="module")
def container(
    unzipped_artifact: Path, tmp_path_factory: pytest.TempPathFactory, function_log: Path
) -> Iterator[LambdaContainer]:
    database = tmp_path_factory.mktemp("artifact-db") / "telehealth.db"
    upgrade_database(f"sqlite:///{database}")
    # The prod artifact under the dev stage's settings, which allow SQLite: the
    # code is the same for every stage, only these variables differ.
    env = lambda_environment(
        APP_STAGE="dev",
        DATABASE_URL=f"sqlite:///{database}",
        API_TOKEN_SHA256=f"clinic-a[patients:read patients:write audit:read]:{token_sha256(TOKEN).hex()}",
    )
    with LambdaContainer(unzipped_artifact, env, log_path=function_log) as process:
        yield process


@pytest.fixture(scope="module")
def transcript(container: LambdaContainer, sam_api_definition: dict[str, Any]) -> dict[str, Any]:
    """Every endpoint, called in order as API Gateway calls the functions: authorizer first."""

    answers: dict[str, Any] = {"routes": set(), "request_ids": []}

    def allowed(method: str, resource: str, path: str, **kwargs: Any) -> Any:
        policy = container.invoke(AUTHORIZER, token_event(BEARER, method, path))
        event = rest_event(
            method, resource, path, authorizer=authorizer_context(policy), authorization=BEARER, **kwargs
        )
        answers["routes"].add((resource, method))
        answers["request_ids"].append(event["requestContext"]["requestId"])
        return container.invoke(API, event)

    def undeclared(method: str, resource: str, path: str, **kwargs: Any) -> Any:
        # API Gateway's choice for a method the resource does not declare: its ANY method, which
        # has no authorizer, so the function gets the request as is, Authorization header and all.
        operation = select_operation(sam_api_definition, resource, method)
        assert operation is not None and "security" not in operation
        answers["routes"].add((resource, method))
        event = rest_event(method, resource, path, authorizer=None, authorization=BEARER, **kwargs)
        answers["request_ids"].append(event["requestContext"]["requestId"])
        return {"request_id": event["requestContext"]["requestId"], **container.invoke(API, event)}

    def public(resource: str, path: str, **kwargs: Any) -> Any:
        answers["routes"].add((resource, "GET"))
        event = rest_event("GET", resource, path, authorizer=None, **kwargs)
        answers["request_ids"].append(event["requestContext"]["requestId"])
        return container.invoke(API, event)

    one = {"path_parameters": {"patient_id": "1"}}
    answers["create"] = allowed("POST", "/patients", "/patients", body=PATIENT)
    answers["duplicate"] = allowed("POST", "/patients", "/patients", body={**PATIENT, "name": "Copy"})
    answers["invalid"] = allowed("POST", "/patients", "/patients", body={"name": "", "email": "nope"})
    answers["read"] = allowed("GET", ITEM, "/patients/1", **one)
    answers["notifications"] = allowed("GET", f"{ITEM}/notifications", "/patients/1/notifications", **one)
    notification_id = body(answers["create"])["notification_id"]
    answers["notification"] = allowed(
        "GET",
        "/notifications/{notification_id}",
        f"/notifications/{notification_id}",
        path_parameters={"notification_id": notification_id},
    )
    answers["dead_letters"] = allowed("GET", "/notifications", "/notifications", query={"status": "failed"})
    answers["list"] = allowed("GET", "/patients", "/patients", query={"page": "1", "per_page": "10"})
    answers["search"] = allowed(
        "POST", "/patients/search", "/patients/search", body={"email": PATIENT["email"]}
    )
    answers["outbox"] = allowed("GET", "/health/notifications", "/health/notifications")
    answers.update(fhir_face(allowed, public))
    answers["update"] = allowed("PUT", ITEM, "/patients/1", body={"phone": None}, **one)
    answers["delete"] = allowed("DELETE", ITEM, "/patients/1", **one)
    answers["gone"] = allowed("GET", ITEM, "/patients/1", **one)
    answers["audit"] = allowed("GET", "/audit", "/audit", query={"patient_id": "1"})
    answers["openapi"] = public("/openapi.json", "/openapi.json")
    answers["docs"] = public("/docs", "/docs")
    answers["docs_with_slash"] = public("/docs", "/docs/")
    answers["patch"] = undeclared("PATCH", ITEM, "/patients/1", **one)
    answers["health"] = public("/health", "/health")
    asset = {"path_parameters": {"asset": "swagger-ui.css"}}
    answers["asset"] = public("/docs/assets/{asset}", "/docs/assets/swagger-ui.css", **asset)
    answers["report"] = container.report()
    return answers


def fhir_face(allowed: Callable[..., Any], public: Callable[..., Any]) -> dict[str, Any]:
    """Every FHIR route, on a patient of its own: its code loads on the first of them."""
    fhir = {"content_type": FHIR_JSON, "accept": FHIR_JSON}
    answers = {"fhir_metadata": public("/fhir/metadata", "/fhir/metadata")}
    answers["fhir_create"] = allowed("POST", "/fhir/Patient", "/fhir/Patient", body=FHIR_PATIENT, **fhir)
    patient_id = body(answers["fhir_create"])["id"]
    one = {"path_parameters": {"patient_id": patient_id}}
    answers["fhir_read"] = allowed("GET", FHIR_ITEM, f"/fhir/Patient/{patient_id}", **one, **fhir)
    answers["fhir_vread"] = allowed(
        "GET",
        f"{FHIR_ITEM}/_history/{{version_id}}",
        f"/fhir/Patient/{patient_id}/_history/1",
        path_parameters={"patient_id": patient_id, "version_id": "1"},
        **fhir,
    )
    answers["fhir_search"] = allowed(
        "GET", "/fhir/Patient", "/fhir/Patient", query={"_id": patient_id}, **fhir
    )
    answers["fhir_search_form"] = allowed(
        "POST",
        "/fhir/Patient/_search",
        "/fhir/Patient/_search",
        body=urlencode({"email": FHIR_EMAIL}),
        content_type="application/x-www-form-urlencoded",
        accept=FHIR_JSON,
    )
    changed = {**FHIR_PATIENT, "id": patient_id, "name": [{"text": "Ada Byron"}]}
    answers["fhir_update"] = allowed(
        "PUT", FHIR_ITEM, f"/fhir/Patient/{patient_id}", body=changed, **one, **fhir
    )
    answers["fhir_delete"] = allowed("DELETE", FHIR_ITEM, f"/fhir/Patient/{patient_id}", **one, **fhir)
    return answers


def test_the_fhir_face_answers_from_the_artifact(transcript: dict[str, Any]) -> None:
    assert transcript["fhir_metadata"]["statusCode"] == 200
    assert body(transcript["fhir_metadata"])["resourceType"] == "CapabilityStatement"
    assert transcript["fhir_create"]["statusCode"] == 201, transcript["fhir_create"]
    assert transcript["fhir_create"]["headers"]["Content-Type"].startswith(FHIR_JSON)
    read = body(transcript["fhir_read"])
    assert read["name"] == [{"text": "Ada Lovelace"}]
    assert {"system": "email", "value": FHIR_EMAIL} in read["telecom"]
    assert body(transcript["fhir_vread"])["meta"]["versionId"] == "1"
    for search in ("fhir_search", "fhir_search_form"):
        bundle = body(transcript[search])
        assert (bundle["type"], [entry["resource"]["id"] for entry in bundle["entry"]]) == (
            "searchset",
            [read["id"]],
        )
    assert body(transcript["fhir_update"])["name"] == [{"text": "Ada Byron"}]
    assert transcript["fhir_delete"]["statusCode"] in (200, 204)


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_every_endpoint_answers_from_the_artifact(transcript: dict[str, Any]) -> None:
    created = transcript["create"]
    assert created["statusCode"] == 201, created
    assert body(created)["patient"]["email"] == PATIENT["email"]
    assert transcript["duplicate"]["statusCode"] == 409
    assert transcript["invalid"]["statusCode"] == 400
    assert body(transcript["invalid"])["code"] == "validation_failed"
    assert body(transcript["read"])["name"] == PATIENT["name"]
    assert body(transcript["list"])["total"] == 1
    assert [patient["name"] for patient in body(transcript["search"])["patients"]] == [PATIENT["name"]]
    assert set(body(transcript["outbox"])) == {"pending", "failed"}
    assert transcript["update"]["statusCode"] == 200
    assert body(transcript["update"])["patient"]["phone"] is None
    assert transcript["delete"]["statusCode"] == 200
    assert transcript["gone"]["statusCode"] == 404
    assert body(transcript["gone"])["code"] == "patient_not_found"
    assert [n["event"] for n in body(transcript["notifications"])["notifications"]] == ["patient.created"]
    # No REDIS_URL in this container: the notification waits in the outbox for the relay.
    assert body(transcript["notification"])["status"] == "pending"
    assert body(transcript["dead_letters"])["notifications"] == []
    audited = [event["action"] for event in body(transcript["audit"])["events"]]
    assert audited[0] == "patient.read" and audited[-1] == "patient.create"
    assert body(transcript["openapi"])["openapi"].startswith("3.1")
    assert transcript["docs"]["statusCode"] == 200 and "swagger-ui" in transcript["docs"]["body"]
    assert transcript["asset"]["statusCode"] == 200
    assert body(transcript["health"])["database"] == "ok"
    assert transcript["asset"]["headers"]["Content-Type"].startswith("text/css")
    patient_answers = ("create", "duplicate", "invalid", "read", "list", "update", "delete", "gone")
    assert all(transcript[name]["headers"]["Cache-Control"] == "no-store" for name in patient_answers)
    assert set(app_routes()) <= transcript["routes"], "every route of app.py is exercised"


def test_an_undeclared_method_reaches_the_function_through_any_and_gets_405_in_our_shape(
    transcript: dict[str, Any],
) -> None:
    answer = transcript["patch"]

    assert answer["statusCode"] == 405
    assert body(answer)["code"] == "method_not_allowed"
    # API Gateway's request id, as $context.requestId names it in the gateway's own answers
    assert body(answer)["request_id"] == answer["request_id"]
    headers = answer["headers"]
    assert {method.strip() for method in headers["Allow"].split(",")} == {"GET", "PUT", "DELETE"}
    assert (headers["Cache-Control"], headers["X-Content-Type-Options"]) == ("no-store", "nosniff")


def test_docs_with_a_trailing_slash_redirects_under_the_stage_prefix(transcript: dict[str, Any]) -> None:
    answer = transcript["docs_with_slash"]

    # The event's requestContext.path is /api/docs/: ../docs leads to /api/docs
    assert answer["statusCode"] == 301
    assert answer["headers"]["Location"] == "../docs"


def test_the_function_logs_one_json_access_line_per_request_through_the_runtimes_handler(
    transcript: dict[str, Any], function_log: Path
) -> None:
    lines = [json.loads(line) for line in function_log.read_text().splitlines()]

    access = [line for line in lines if line["logger"] == "telehealth.access"]
    # API Gateway's request id on each, in the order the requests came
    assert [line["request_id"] for line in access] == transcript["request_ids"]
    assert {(line["route"], line["method"]) for line in access} == transcript["routes"]
    create = access[0]
    assert (create["status"], create["principal"], create["level"]) == (201, "clinic-a", "INFO")
    logged = function_log.read_text().lower()
    # the phone's digits as typed and as stored; a shorter piece could match a timestamp
    for value in ("ada@example", "lovelace", "7946 0958", "2079460958"):
        assert value not in logged


def test_authorizer_allows_a_valid_token_with_its_principal(container: LambdaContainer) -> None:
    policy = container.invoke(AUTHORIZER, token_event(BEARER, "GET", "/patients/7"))

    assert policy["principalId"] == "clinic-a"
    assert policy["context"] == {"principal": "clinic-a", "scopes": "audit:read patients:read patients:write"}
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/api/*/*"]


@pytest.mark.parametrize("authorization", ["Bearer wrong-token", "Bearer secret-token-123", TOKEN, "Bearer "])
def test_authorizer_denies_anything_else(container: LambdaContainer, authorization: str) -> None:
    policy = container.invoke(AUTHORIZER, token_event(authorization, "GET", "/patients"))

    # Chalice's deny is an allow of nothing; API Gateway answers it with ACCESS_DENIED,
    # which the packaged template turns into our 401.
    assert policy["principalId"] == "anonymous"
    assert policy["policyDocument"]["Statement"][0]["Resource"] == []
    assert "context" not in policy or not policy["context"]


def test_handlers_import_nothing_from_outside_the_artifact(transcript: dict[str, Any]) -> None:
    report = transcript["report"]

    assert report["imported_from_outside"] == []
    for lazy_module in ("email_validator", "phonenumbers", "sqlalchemy.orm", "functions.create_patient"):
        assert lazy_module in report["modules"]  # the calls above reached every handler and validator


def test_the_artifact_imports_from_bytecode_and_compiles_nothing(
    transcript: dict[str, Any], unzipped_artifact: Path, lambda_package: PackageOutput
) -> None:
    report = transcript["report"]

    assert report["compiled_from_source"] == []
    assert report["missing_bytecode"] == []
    with zipfile.ZipFile(lambda_package.deployment_zip) as archive:
        shipped = set(archive.namelist())
    found = {p.relative_to(unzipped_artifact).as_posix() for p in unzipped_artifact.rglob("*") if p.is_file()}
    assert found == shipped, "nothing may be written into the task root"


def test_prod_refuses_sqlite_at_cold_start_in_the_artifact(unzipped_artifact: Path, tmp_path: Path) -> None:
    env = lambda_environment(
        APP_STAGE="prod", DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", API_TOKENS="a:strong"
    )
    with (
        LambdaContainer(unzipped_artifact, env) as process,
        pytest.raises(InvocationError, match="ConfigurationError: prod stage needs DATABASE_URL"),
    ):
        process.invoke(AUTHORIZER, token_event(BEARER, "GET", "/patients"))


def test_the_authorizer_function_needs_only_its_token_settings_at_cold_start(unzipped_artifact: Path) -> None:
    # GIVEN the authorizer's function in prod as deployed: its environment names no database nor Redis,
    # and Lambda names the handler it runs in _HANDLER
    env = lambda_environment(
        APP_STAGE="prod", API_TOKEN_SHA256=f"clinic-a:{token_sha256(TOKEN).hex()}", _HANDLER=AUTHORIZER
    )

    # WHEN it starts cold and checks a token
    with LambdaContainer(unzipped_artifact, env) as process:
        allowed = process.invoke(AUTHORIZER, token_event(BEARER, "GET", "/patients"))
        denied = process.invoke(AUTHORIZER, token_event("Bearer secret-token-123", "GET", "/patients"))

    # THEN it answers, reading no database setting; the development token stays refused
    assert allowed["principalId"] == "clinic-a"
    assert denied["principalId"] == "anonymous"


def test_the_authorizer_function_still_refuses_the_development_token_in_prod(unzipped_artifact: Path) -> None:
    env = lambda_environment(
        APP_STAGE="prod",
        API_TOKEN_SHA256=f"ops:{token_sha256('secret-token-123').hex()}",
        _HANDLER=AUTHORIZER,
    )

    with (
        LambdaContainer(unzipped_artifact, env) as process,
        pytest.raises(InvocationError, match="ConfigurationError: prod stage refuses the development token"),
    ):
        process.invoke(AUTHORIZER, token_event(BEARER, "GET", "/patients"))
