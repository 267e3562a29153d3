"""The smoke check after a deploy: ``make smoke API_URL=https://… TOKEN=…``.

Against the live API (its stage URL, e.g. CloudFormation's ``EndpointURL`` output): ``GET /health``;
a protected route without a token is our 401; with the token a patient is created, read, its
notification polled until ``delivered``, deleted, and read again (404); and the TLS version the
endpoint negotiates is TLS 1.2 or newer, while a client offering at most TLS 1.1 is refused (the
legacy ``TLS_1_0`` policy of a REST API's default endpoint would accept it). One line per check;
the exit status is 1 when any check failed.

It prints no token and no patient data: the patient is made up (an address of SES's mailbox
simulator, which accepts mail without sending it anywhere, and no phone, so no text is sent), and
only statuses, ids and the TLS version are printed. The token is read from the environment (``TOKEN``),
never from this script's arguments (``make smoke TOKEN=…`` still shows it in make's; from a CI secret
or on a shared machine, export it instead). Standard library only: any Python 3.11 runs it, without
the project's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MINIMUM_TLS = ssl.TLSVersion.TLSv1_2
# What ssl.SSLSocket.version() answers, oldest first.
TLS_VERSION_NAMES = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
DEFAULT_TIMEOUT_SECONDS = 120.0
UNAUTHORIZED_CODE = "unauthorized"  # chalicelib/http/gateway_responses.py, in the cloud and locally


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # decoded JSON, or None


def tls_version_acceptable(version: str | None) -> bool:
    """Whether a negotiated version (as ``SSLSocket.version()`` names it) is TLS 1.2 or newer."""
    acceptable = TLS_VERSION_NAMES[TLS_VERSION_NAMES.index("TLSv1.2") :]
    return version in acceptable


# --- TLS -----------------------------------------------------------------------------------------


def client_context(cafile: str | None = None, *, legacy_only: bool = False) -> ssl.SSLContext:
    """A verifying client context that offers every version this OpenSSL can (so that a server
    stuck on an old one is seen, not just failed), or with ``legacy_only`` none newer than TLS 1.1."""
    context = ssl.create_default_context(cafile=cafile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # naming TLS 1.0 and 1.1 is deprecated
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        if legacy_only:
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    # TLS 1.0 and 1.1 need SHA-1 signatures, which OpenSSL 3's default security level refuses.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def negotiated_version(host: str, port: int, context: ssl.SSLContext, timeout: float) -> str | None:
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.version()


def check_tls(api_url: str, cafile: str | None = None, timeout: float = 10) -> Check:
    """The version negotiated with the API's host, and whether it refuses TLS 1.1 and below."""
    parts = urlsplit(api_url)
    if parts.scheme == "http":
        return Check("tls", True, "no TLS (local)")
    host, port = parts.hostname or "", parts.port or 443
    try:
        version = negotiated_version(host, port, client_context(cafile), timeout)
    except (OSError, ssl.SSLError) as error:
        return Check("tls", False, f"no TLS handshake with {host}:{port}: {error}")
    if not tls_version_acceptable(version):
        return Check("tls", False, f"{version} negotiated: below TLS 1.2")
    legacy = _legacy_probe(host, port, cafile, timeout)
    if legacy is None:
        return Check("tls", True, f"{version} negotiated; TLS 1.1 not probed (this OpenSSL cannot offer it)")
    if legacy:
        return Check("tls", False, f"{version} negotiated, but {legacy} is accepted too")
    return Check("tls", True, f"{version} negotiated; TLS 1.1 and below refused")


def _legacy_probe(host: str, port: int, cafile: str | None, timeout: float) -> str | None | bool:
    """The legacy version the server accepted, False if it refused them, None if we cannot offer one."""
    try:
        return negotiated_version(host, port, client_context(cafile, legacy_only=True), timeout) or False
    except ssl.SSLError as error:
        return None if error.reason == "NO_PROTOCOLS_AVAILABLE" else False
    except OSError:  # a reset or a closed connection: refused
        return False


# --- HTTP ----------------------------------------------------------------------------------------


class Api:
    """The API at ``base_url``: JSON requests, with or without the bearer token."""

    def __init__(self, base_url: str, token: str, cafile: str | None, timeout: float = 30) -> None:
        self.base_url, self._token, self.timeout = base_url.rstrip("/"), token, timeout
        self._context = ssl.create_default_context(cafile=cafile)
        self._context.minimum_version = MINIMUM_TLS  # the token never goes over less

    def call(self, method: str, path: str, body: Any = None, *, authorized: bool = True) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if authorized:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)  # noqa: S310
        context = self._context if self.base_url.startswith("https:") else None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:  # noqa: S310
                return Answer(response.status, _json_or_none(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json_or_none(error.read()))


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


# --- The checks ----------------------------------------------------------------------------------


def smoke_patient() -> dict[str, str]:
    """A made-up patient no one receives mail for: SES's mailbox simulator, a label of its own."""
    return {"name": "Smoke Check", "email": f"success+smoke-{uuid.uuid4().hex[:12]}@simulator.amazonses.com"}


def run_checks(api: Api, notification_timeout: float, cafile: str | None = None) -> Iterator[Check]:
    """Each check's result, in order; the patient's checks stop at a failed create."""
    yield check_tls(api.base_url, cafile)
    health = api.call("GET", "/health", authorized=False)
    yield Check("health", health.status == 200, f"GET /health -> {health.status}")
    yield check_unauthorized(api)
    yield from patient_round_trip(api, notification_timeout)


def check_unauthorized(api: Api) -> Check:
    answer = api.call("GET", "/patients", authorized=False)
    code = answer.body.get("code") if isinstance(answer.body, dict) else None
    ok = answer.status == 401 and code == UNAUTHORIZED_CODE and "message" in answer.body
    return Check("401 without a token", ok, f"GET /patients -> {answer.status}, code {code!r}")


def patient_round_trip(api: Api, notification_timeout: float) -> Iterator[Check]:
    created = api.call("POST", "/patients", smoke_patient())
    if created.status != 201:
        yield Check(
            "create", False, f"POST /patients -> {created.status} (read, notification, delete not run)"
        )
        return
    patient_id, notification_id = created.body["patient"]["id"], created.body["notification_id"]
    yield Check("create", True, f"POST /patients -> 201, patient {patient_id}")
    try:
        read = api.call("GET", f"/patients/{patient_id}")
        yield Check("read", read.status == 200, f"GET /patients/{patient_id} -> {read.status}")
        yield wait_for_delivery(api, notification_id, notification_timeout)
    finally:
        deleted = api.call("DELETE", f"/patients/{patient_id}")
        yield Check("delete", deleted.status == 200, f"DELETE /patients/{patient_id} -> {deleted.status}")
    gone = api.call("GET", f"/patients/{patient_id}")
    yield Check("read after delete", gone.status == 404, f"GET /patients/{patient_id} -> {gone.status}")


def wait_for_delivery(
    api: Api, notification_id: str, timeout: float, sleep: Callable[[float], None] = time.sleep
) -> Check:
    """Poll the notification until it is delivered, ends otherwise, or ``timeout`` seconds pass."""
    started = time.monotonic()
    status = None
    while time.monotonic() - started < timeout:
        answer = api.call("GET", f"/notifications/{notification_id}")
        status = answer.body.get("status") if answer.status == 200 and isinstance(answer.body, dict) else None
        if status == "delivered":
            return Check(
                "notification", True, f"{notification_id} delivered in {time.monotonic() - started:.1f} s"
            )
        if status in ("failed", "cancelled"):
            break
        sleep(1)
    return Check(
        "notification", False, f"{notification_id} is {status!r} after {time.monotonic() - started:.0f} s"
    )


@contextmanager
def _no_traceback_with_secrets() -> Iterator[None]:
    """An unexpected error ends the run with its type and message only (a traceback's locals are not
    printed, but its lines could quote a request)."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"FAIL smoke check stopped: {type(error).__name__}: {error}", flush=True)
        raise SystemExit(1) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--api-url", default=os.environ.get("API_URL"), help="the stage URL (default: $API_URL)"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait for delivery (120)"
    )
    parser.add_argument("--cafile", default=None, help="CA bundle to trust instead of the system's")
    args = parser.parse_args(argv)
    token = os.environ.get("TOKEN", "")
    if not args.api_url or not token:
        parser.error("set API_URL (or --api-url) and TOKEN: make smoke API_URL=https://… TOKEN=…")
    api = Api(args.api_url, token, args.cafile)
    failed = 0
    with _no_traceback_with_secrets():
        for check in run_checks(api, args.timeout, args.cafile):
            print(check.line(), flush=True)
            failed += not check.passed
    print(f"{'FAIL' if failed else 'PASS'} smoke: {failed} check(s) failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
