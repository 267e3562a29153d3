"""FHIR search over the patient search service: its parameters, and the ``searchset`` Bundle."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from chalicelib.audit.recording import FHIR_SEARCH_PATIENTS, AuditContext
from chalicelib.errors import NotSupported, PatientNotFound, ValidationFailed
from chalicelib.fhir.patient import IDENTIFIER_SYSTEM
from chalicelib.service_layer.unit_of_work import ReadTransaction

if TYPE_CHECKING:
    from chalicelib.config.settings import Settings
    from chalicelib.storage.models import PatientRecord

IF_NONE_EXIST = "If-None-Exist"

# name: (FHIR search parameter type, what it matches). Without patient data: in a GET query.
GET_PARAMETERS: dict[str, tuple[str, str]] = {
    "_id": ("token", "The patient's id."),
    "_lastUpdated": ("date", "Changed at or after: only the ge prefix (ge2026-01-31T09:30:00Z)."),
}
# Carrying patient data: only in the form body of POST /fhir/Patient/_search.
POST_PARAMETERS: dict[str, tuple[str, str]] = {
    "identifier": ("token", "This API's identifier: <system>|<id>, or the id alone."),
    "name": ("string", "Words, each the start of a word of the name, regardless of case and accents."),
    "family": ("string", "As name (the name is one string: family and given are not told apart)."),
    "given": ("string", "As name (the name is one string: family and given are not told apart)."),
    "email": ("token", "The email, regardless of case."),
    "phone": ("token", "The phone, compared in E.164 form."),
    "telecom": ("token", "An email (with @) or a phone; email|… or phone|… says which."),
}

# What the form body of POST /fhir/Patient/_search takes: every parameter, and the result ones.
FORM_PARAMETERS = (*GET_PARAMETERS, *POST_PARAMETERS, "_count")


def searchset(
    base: str, entries: list[dict[str, Any]], self_url: str, next_url: str | None
) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/Patient/{entry['id']}", "resource": entry, "search": {"mode": "match"}}
            for entry in entries
        ],
    }


def match_for_create(condition: str, audit: AuditContext, settings: Settings) -> PatientRecord | None:
    """The patient ``If-None-Exist`` names (``identifier=<system>|<id>`` or ``email=<address>``), if
    one exists; None when none does. The look-up is a search of its own in the audit trail (with the
    request's principal and id), and discloses what it finds. Raises ValidationFailed, NotSupported
    (another parameter)."""
    pairs = parse_qsl(condition.strip(), keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] not in ("identifier", "email") or not pairs[0][1]:
        raise NotSupported(
            f"{IF_NONE_EXIST} takes one parameter: identifier=<system>|<id> or email=<address>",
            field=IF_NONE_EXIST,
        )
    name, value = pairs[0]
    lookup = replace(audit, action=FHIR_SEARCH_PATIENTS, patient_id=None)
    reads = ReadTransaction(audit=lookup)
    if name == "identifier":
        from chalicelib.patients import service as patients

        try:
            return patients.get_patient(
                reads, own_identifier(value), durable_audit=settings.durable_read_audit
            )
        except PatientNotFound:
            return None
    from chalicelib.patients import search

    page = search.search_patients(
        reads,
        {"email": value, "per_page": 2},
        phone_region=settings.phone_default_region,
        durable_audit=settings.durable_read_audit,
    )
    # Emails are unique: never two matches (FHIR's 412 for those cannot arise).
    return page.patients[0] if page.patients else None


def own_identifier(token: str) -> str:
    """The id an identifier token names: ``<this API's system>|<id>``, ``|<id>`` or ``<id>``.
    Raises NotSupported for another system."""
    system, bar, value = token.rpartition("|")
    if bar and system not in ("", IDENTIFIER_SYSTEM):
        raise NotSupported(
            f"This server keeps no identifier but its own ({IDENTIFIER_SYSTEM})", field="identifier"
        )
    if not value:
        raise ValidationFailed("identifier needs a value", field="identifier")
    return value
