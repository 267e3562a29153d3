"""Per-request cost against the baseline: the seed-style Flask app a user would otherwise write.

    make bench-baseline            (or: .venv/bin/python -m bench.seed_baseline --requests 2000)

Both apps run in this process on their own SQLite file, driven two ways:

* through their framework's test client (Flask's WSGI test client;
  chalice.test.Client, which also runs our authorizer and gateway emulation
  and copies the process environment on every request);
* as they are invoked in Lambda: the seed behind apig-wsgi (the usual
  WSGI-to-Lambda adapter), ours as Lambda calls it
  (``app(event, context)`` with an API Gateway event whose authorizer result
  API Gateway has cached, as it does for ``ttl_seconds``).

Each case alternates, request by request, between the two apps, so a shared
machine's load falls on both alike.

Ours validates input, checks the token against digests in constant time, maps
errors, writes the outbox and an audit row for every read and change, and logs
an access line; the seed does none of that. Prints requests/s and p50/p99 per case.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any

TOKEN = "secret-token-123"


def build_seed_app(database: Path | str, redis_url: str | None = None) -> Any:
    """The seed README's Flask app, as its users write it (app.py + models.py + auth.py).

    ``database`` is an SQLite file or a database URL. With ``redis_url`` a create sends
    a Celery task by name to that Redis after its commit, as the seed's notifications do.
    """
    from flask import Flask, jsonify, request
    from flask_sqlalchemy import SQLAlchemy

    enqueue = _seed_celery_client(redis_url) if redis_url else None

    db = SQLAlchemy()

    class Patient(db.Model):  # type: ignore[name-defined]
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String(100), nullable=False)
        email = db.Column(db.String(120), unique=True, nullable=False)
        phone = db.Column(db.String(20))
        created_at = db.Column(db.DateTime, default=datetime.utcnow)
        updated_at = db.Column(db.DateTime, default=datetime.utcnow, onupdate=datetime.utcnow)

        def to_dict(self) -> dict[str, Any]:
            return {
                "id": self.id,
                "name": self.name,
                "email": self.email,
                "phone": self.phone,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
            }

    def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or header.split(" ", 1)[1] != TOKEN:
                return jsonify({"error": "Unauthorized"}), 401
            return view(*args, **kwargs)

        return decorated

    app = Flask("seed")
    app.config["SQLALCHEMY_DATABASE_URI"] = database if isinstance(database, str) else f"sqlite:///{database}"
    db.init_app(app)

    @app.route("/patients", methods=["POST"])
    @token_required
    def create_patient() -> Any:
        data = request.get_json()
        if not data or not data.get("name") or not data.get("email"):
            return jsonify({"error": "Missing required fields"}), 400
        if Patient.query.filter_by(email=data["email"]).first():
            return jsonify({"error": "Email already exists"}), 409
        patient = Patient(name=data["name"], email=data["email"], phone=data.get("phone"))
        db.session.add(patient)
        db.session.commit()
        if enqueue is not None:
            enqueue(patient.id)
        return jsonify({"message": "Patient created successfully", "patient": patient.to_dict()}), 201

    @app.route("/patients/<int:patient_id>", methods=["GET"])
    @token_required
    def get_patient(patient_id: int) -> Any:
        patient = db.session.get(Patient, patient_id)
        if patient is None:
            return jsonify({"error": "Patient not found"}), 404
        return jsonify(patient.to_dict())

    @app.route("/patients", methods=["GET"])
    @token_required
    def list_patients() -> Any:
        page = request.args.get("page", 1, type=int)
        per_page = request.args.get("per_page", 10, type=int)
        pagination = Patient.query.paginate(page=page, per_page=per_page)
        return jsonify(
            {
                "total": pagination.total,
                "pages": pagination.pages,
                "current_page": page,
                "patients": [p.to_dict() for p in pagination.items],
            }
        )

    with app.app_context():
        db.create_all()
    return app


def _seed_celery_client(redis_url: str) -> Callable[[int], None]:
    from celery import Celery

    client = Celery("seed", broker=redis_url)

    def enqueue(patient_id: int) -> None:
        client.send_task("seed.send_notification", args=[patient_id])

    return enqueue


class SeedClient:
    def __init__(self, app: Any) -> None:
        self._client = app.test_client()

    def get(self, path: str) -> int:
        return int(self._client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code)

    def post(self, path: str, body: dict[str, Any]) -> int:
        response = self._client.post(path, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        return int(response.status_code)


class ChaliceClient:
    def __init__(self, database: Path) -> None:
        import os

        os.environ.update(DATABASE_URL=f"sqlite:///{database}", APP_STAGE="dev")
        os.environ.pop("API_TOKENS", None)
        from chalice.test import Client

        from app import app
        from chalicelib.storage.migrate import upgrade_database

        upgrade_database(f"sqlite:///{database}")
        self._client = Client(app, stage_name="dev")
        self._headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def get(self, path: str) -> int:
        return int(self._client.http.get(path, headers=self._headers).status_code)

    def post(self, path: str, body: dict[str, Any]) -> int:
        response = self._client.http.post(path, headers=self._headers, body=json.dumps(body))
        return int(response.status_code)


class SeedInLambda:
    """The seed as Lambda runs it: behind apig-wsgi, the usual WSGI-to-Lambda adapter, given
    the same API Gateway event ours gets."""

    def __init__(self, app: Any) -> None:
        from apig_wsgi import make_lambda_handler

        from deploy.lambda_runtime import LambdaContext

        self._handler, self._context = make_lambda_handler(app), LambdaContext()

    def get(self, path: str) -> int:
        return self.call("GET", path, None)[0]

    def post(self, path: str, body: dict[str, Any]) -> int:
        return self.call("POST", path, body)[0]

    def call(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        response = self._handler(lambda_event(method, path, body, authorizer=None), self._context)
        return int(response["statusCode"]), response["body"]


class ChaliceLambdaInvoke:
    """Ours as Lambda calls it: ``app(event, context)``, the authorizer's result cached by API Gateway,
    on ``database_url`` (migrated beforehand) with ``env`` added to the process's settings."""

    def __init__(self, database_url: str, **env: str) -> None:
        from chalicelib.config.tokens import DEVELOPMENT_PRINCIPAL
        from chalicelib.scopes import ALL_SCOPES, scope_string
        from deploy.lambda_events import allowed_token_context
        from deploy.lambda_runtime import LambdaContext

        _use_database(database_url, **env)
        from app import app

        self._app, self._context = app, LambdaContext()
        self._authorizer = allowed_token_context(DEVELOPMENT_PRINCIPAL, scope_string(ALL_SCOPES))

    def get(self, path: str) -> int:
        return self.call("GET", path, None)[0]

    def post(self, path: str, body: dict[str, Any]) -> int:
        return self.call("POST", path, body)[0]

    def call(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        response = self._app(lambda_event(method, path, body, self._authorizer), self._context)
        return int(response["statusCode"]), response["body"]


def lambda_event(
    method: str, path: str, body: dict[str, Any] | None, authorizer: dict[str, Any] | None
) -> dict[str, Any]:
    """API Gateway's event for ``method path``; ``authorizer``: the context of an allowed token."""
    from deploy.lambda_events import rest_event

    path_only, _, query = path.partition("?")
    patient_id = path_only.removeprefix("/patients/") if path_only.startswith("/patients/") else None
    return rest_event(
        method,
        "/patients/{patient_id}" if patient_id else "/patients",
        path_only,
        authorizer=authorizer,
        authorization=f"Bearer {TOKEN}",
        path_parameters={"patient_id": patient_id} if patient_id else None,
        query=dict(pair.split("=", 1) for pair in query.split("&")) if query else None,
        body=body,
    )


def _use_database(database_url: str, **env: str) -> None:
    """This process's settings on ``database_url``, dev stage, ``env`` added; the shell's token list,
    rate limit and Lambda function name left out (the bench calls with the development token)."""
    import os

    from chalicelib.bootstrap import reset_for_tests

    os.environ.update(DATABASE_URL=database_url, APP_STAGE="dev", **env)
    for name in ("API_TOKENS", "RATE_LIMIT_PER_MINUTE", "AWS_LAMBDA_FUNCTION_NAME"):
        os.environ.pop(name, None)
    reset_for_tests()


def figures(label: str, latencies: list[float]) -> dict[str, Any]:
    latencies = sorted(latencies)
    return {
        "case": label,
        "rps": len(latencies) / sum(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def run_cases(clients: dict[str, Any], requests: int) -> list[dict[str, Any]]:
    """Each case, request by request alternating between the apps, so a shared machine's load
    falls on both alike; req/s is requests over the time spent in that app's calls."""

    def create(client: Any, name: str, i: int) -> int:
        return int(client.post("/patients", {"name": f"P {i}", "email": f"{name}-{i}@example.com"}))

    def read(client: Any, _: str, i: int) -> int:
        return int(client.get(f"/patients/{i % 100 + 1}"))

    def list_page(client: Any, _: str, i: int) -> int:
        return int(client.get("/patients?per_page=20"))

    cases: list[tuple[str, int, int, Callable[[Any, str, int], int]]] = [
        ("POST /patients", requests, 201, create),
        ("GET /patients/{id}", requests, 200, read),
        ("GET /patients?per_page=20", requests // 4, 200, list_page),
    ]
    rows = []
    for case, count, expected, call in cases:
        latencies: dict[str, list[float]] = {name: [] for name in clients}
        for i in range(count):
            for name, client in clients.items():
                started = time.perf_counter()
                status = call(client, name, i)
                latencies[name].append(time.perf_counter() - started)
                if status != expected:
                    raise SystemExit(f"{name} {case}: request {i} answered {status}, expected {expected}")
        rows += [figures(f"{name} {case}", latencies[name]) for name in clients]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    from chalicelib.storage.migrate import upgrade_database

    with tempfile.TemporaryDirectory() as tmp:
        seed_app = build_seed_app(Path(tmp) / "seed.db")
        seed = SeedClient(seed_app)
        ours = ChaliceClient(Path(tmp) / "ours.db")
        through_test_clients = run_cases({"seed": seed, "ours": ours}, args.requests)
        # Fresh databases, so the second pair starts where the first did.
        seed_server = SeedInLambda(build_seed_app(Path(tmp) / "seed-deployed.db"))
        ours_url = f"sqlite:///{Path(tmp) / 'ours-deployed.db'}"
        upgrade_database(ours_url)
        ours_lambda = ChaliceLambdaInvoke(ours_url)
        as_deployed = run_cases({"seed": seed_server, "ours": ours_lambda}, args.requests)
    for title, rows in (
        ("through each framework's test client", through_test_clients),
        ("as deployed in Lambda: the seed behind apig-wsgi, ours called by Lambda", as_deployed),
    ):
        print(title)
        print(f"  {'case':40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for row in rows:
            print(f"  {row['case']:40} {row['rps']:9.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}")
        seed_rows, ours_rows = rows[0::2], rows[1::2]
        for seed_row, ours_row in zip(seed_rows, ours_rows, strict=True):
            case = seed_row["case"].removeprefix("seed ")
            print(f"  ours/seed p50 {case:26} {ours_row['p50_ms'] / seed_row['p50_ms']:.2f}x")


if __name__ == "__main__":
    main()
