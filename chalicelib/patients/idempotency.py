"""Idempotent creates: a retried ``POST /patients`` with the same ``Idempotency-Key`` creates nothing new.

The key row is inserted first in the create's own transaction, so the
database decides between concurrent requests with one key: on PostgreSQL the
second insert waits on the primary key until the first transaction ends, on
SQLite ``BEGIN IMMEDIATE`` runs them one after the other. The loser then reads
the winner's row and replays it. A create that fails rolls its key row back
with it, so only a completed create holds a key.

A key belongs to the principal that used it and lives 24 hours. The row keeps
the created patient's id and the id of its notification, never a copy of the
patient: a replay answers the patient as it is now (its current version and
``ETag``), so a retry never hands out a name, email or phone that was changed
since. Deleting the patient deletes its key rows in the same transaction, so a
retry after the delete is a new create and nothing of the deleted patient
(not even the hash of the body that held its data) stays behind.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.audit.recording import REPLAY_CREATE
from chalicelib.errors import IdempotencyKeyReused, ServiceUnavailable, ValidationFailed
from chalicelib.service_layer.unit_of_work import UnitOfWork
from chalicelib.storage.models import Patient, StoredIdempotencyKey, utc_now

logger = logging.getLogger("telehealth.retention")
IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_LIFETIME = timedelta(hours=24)
# Printable ASCII, as the IETF idempotency-key draft and Stripe take it.
KEY_FORMAT = re.compile(r"[\x20-\x7e]{1,255}")
# A key row can vanish between our failed insert and our read only if it expired and was purged
# meanwhile; a few rounds settle that.
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class IdempotencyKey:
    principal: str
    key: str
    # HMAC-SHA256 of the body's canonical JSON under the server's key (IDEMPOTENCY_KEY_SECRET), in hex:
    # whoever reads the table cannot confirm a guessed name and email, as a plain SHA-256 allowed.
    request_digest: str
    # The plain SHA-256 that rows written before the HMAC hold: such a row answers its retry until it
    # expires (24 h after the deployment that brought the HMAC; then this can go).
    legacy_request_digest: str


def idempotency_key(
    principal: str, raw_key: str | None, payload: Any, secret: bytes
) -> IdempotencyKey | None:
    """The key of a create request (None without the header). Raises ValidationFailed for a bad key."""
    if raw_key is None:
        return None
    if not KEY_FORMAT.fullmatch(raw_key):
        raise ValidationFailed(
            f"{IDEMPOTENCY_KEY} must be 1 to 255 printable ASCII characters", field=IDEMPOTENCY_KEY
        )
    canonical = _canonical_json(payload)
    return IdempotencyKey(
        principal,
        raw_key,
        hmac.new(secret, canonical, hashlib.sha256).hexdigest(),
        hashlib.sha256(canonical).hexdigest(),
    )


def _canonical_json(payload: Any) -> bytes:
    """The body as one text: key order and whitespace do not make a body different."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def claim(uow: UnitOfWork, key: IdempotencyKey, now: datetime) -> tuple[Patient, str | None] | None:
    """Take ``key`` for the create running in ``uow``, or return what an earlier create with it made.

    Returns None when this transaction now holds the key (call ``complete`` after
    the create). Returns the earlier create's patient, as it is now, for the
    same body, with the id of its notification. Raises IdempotencyKeyReused for another body.
    """
    keys = uow.idempotency_keys
    for _ in range(CLAIM_ATTEMPTS):
        record = keys.find(key.principal, key.key)
        if record is not None and record.expires_at <= now:
            keys.delete_expired(now, principal=key.principal, key=key.key)
            record = None
        if record is None:
            values = {
                "principal": key.principal,
                "key": key.key,
                "request_sha256": key.request_digest,
                "created_at": now,
                "expires_at": now + KEY_LIFETIME,
            }
            if keys.insert_if_absent(values):
                return None
            continue  # a concurrent request with this key committed first: read its row
        if record.request_sha256 not in (key.request_digest, key.legacy_request_digest):
            raise IdempotencyKeyReused()
        patient = uow.patients.get(record.patient_id) if record.patient_id is not None else None
        if patient is None:
            # Deleting a patient forgets its keys in the same transaction; a row left over
            # (written outside the API) is forgotten now and the key taken afresh.
            keys.forget(key.principal, key.key)
            continue
        if uow.audit is not None:
            uow.audit.note_patient(patient.id, action=REPLAY_CREATE)
        return patient, _notification_id(record)
    raise ServiceUnavailable("The Idempotency-Key could not be claimed; try again")


def complete(uow: UnitOfWork, key: IdempotencyKey, patient: Patient, notification_id: str | None) -> None:
    """Store what the create made (ids only), in its transaction, for replays."""
    result = json.dumps({"notification_id": notification_id}, separators=(",", ":"))
    uow.idempotency_keys.complete(key.principal, key.key, patient_id=patient.id, result=result)


def purge_expired_keys(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Delete every expired key row; returns how many.

    Expired rows are already ignored and replaced when their key comes again;
    this keeps the promise of 24 hours and bounds the table. Run by the scheduled
    function ``purge_expired_records``; two runs at once delete each row once.
    """
    with uow:
        purged = uow.idempotency_keys.delete_expired(now or utc_now())
        uow.commit()
    logger.info("purged expired idempotency keys", extra={"count": purged})
    return purged


def _notification_id(record: StoredIdempotencyKey) -> str | None:
    if record.result is None:
        # Written in the transaction that inserted the row, so never seen empty once committed.
        raise RuntimeError("idempotency key row without a result")
    notification_id = json.loads(record.result).get("notification_id")
    return str(notification_id) if notification_id is not None else None
