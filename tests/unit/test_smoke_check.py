"""``make smoke``'s TLS check against in-process TLS servers, its version rule, and a failed run.

The checks over HTTP run against the local stack in tests/e2e/test_local_stack.py.
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts import smoke
from scripts.api_process import free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def tls_server(
    certificate: tuple[Path, Path], minimum: ssl.TLSVersion, maximum: ssl.TLSVersion
) -> Iterator[str]:
    """A loopback server that completes TLS handshakes within [minimum, maximum]; yields its URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version, context.maximum_version = minimum, maximum
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with contextlib.suppress(OSError), connection:
                connection.settimeout(5)
                with context.wrap_socket(connection, server_side=True):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{listener.getsockname()[1]}/api"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


TLS_1_0, TLS_1_1 = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
TLS_1_2, TLS_1_3 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def test_an_endpoint_that_speaks_only_tls_1_2_and_up_passes(certificate: tuple[Path, Path]) -> None:
    # GIVEN an endpoint refusing anything below TLS 1.2
    with tls_server(certificate, TLS_1_2, TLS_1_3) as url:
        # WHEN the smoke check looks at it
        check = smoke.check_tls(url, cafile=str(certificate[0]))

    # THEN it passes, naming the version, and saw a client offering at most TLS 1.1 refused
    assert check == smoke.Check("tls", True, "TLSv1.3 negotiated; TLS 1.1 and below refused")


def test_an_endpoint_that_still_accepts_tls_1_0_fails_though_it_negotiates_1_3(
    certificate: tuple[Path, Path],
) -> None:
    # GIVEN an endpoint with API Gateway's legacy TLS_1_0 policy: anything from TLS 1.0 up
    # (this machine's OpenSSL 3 speaks TLS 1.0 and 1.1 at security level 0, as the check asks)
    with tls_server(certificate, TLS_1_0, TLS_1_3) as url:
        # WHEN the smoke check looks at it
        check = smoke.check_tls(url, cafile=str(certificate[0]))

    # THEN it fails: a modern client gets TLS 1.3, an old one would get TLS 1.1
    assert not check.passed
    assert check.detail == "TLSv1.3 negotiated, but TLSv1.1 is accepted too"


def test_an_endpoint_that_speaks_at_most_tls_1_1_fails(certificate: tuple[Path, Path]) -> None:
    # GIVEN an endpoint stuck on TLS 1.1
    with tls_server(certificate, TLS_1_0, TLS_1_1) as url:
        check = smoke.check_tls(url, cafile=str(certificate[0]))

    # THEN the check fails, naming the version
    assert check == smoke.Check("tls", False, "TLSv1.1 negotiated: below TLS 1.2")


def test_a_certificate_the_client_does_not_trust_fails(certificate: tuple[Path, Path]) -> None:
    # GIVEN a TLS 1.3 endpoint whose certificate no trusted CA signed
    with tls_server(certificate, TLS_1_2, TLS_1_3) as url:
        check = smoke.check_tls(url)

    # THEN the handshake is refused by the check itself
    assert not check.passed and "CERTIFICATE_VERIFY_FAILED" in check.detail


@pytest.mark.parametrize(
    ("version", "acceptable"),
    [
        ("TLSv1.3", True),
        ("TLSv1.2", True),
        ("TLSv1.1", False),
        ("TLSv1", False),
        ("SSLv3", False),
        (None, False),
    ],
)
def test_the_version_rule(version: str | None, acceptable: bool) -> None:
    assert smoke.tls_version_acceptable(version) is acceptable


def test_plain_http_is_said_to_be_local() -> None:
    assert smoke.check_tls("http://127.0.0.1:8000") == smoke.Check("tls", True, "no TLS (local)")


def test_an_unreachable_api_fails_the_run_without_printing_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a URL where nothing listens, and a token
    monkeypatch.setenv("TOKEN", "smoke-token-never-printed")

    # WHEN the smoke check runs
    with pytest.raises(SystemExit) as stopped:
        smoke.main(["--api-url", f"http://127.0.0.1:{free_port()}"])

    # THEN it exits 1 with a FAIL line and never shows the token
    out = capsys.readouterr().out
    assert stopped.value.code == 1
    assert out.splitlines()[0] == "PASS tls: no TLS (local)"
    assert out.splitlines()[-1].startswith("FAIL smoke check stopped: URLError")
    assert "smoke-token-never-printed" not in out
