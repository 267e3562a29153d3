"""A FHIR search run, and its answer: the page, on the JSON API's services, as a ``searchset`` Bundle.

``run`` hands a parsed search (``chalicelib.fhir.search``) to the service the JSON API uses for it,
which reads, audits and discloses as it does for the JSON API: ``_id`` alone is a read by id
(``patients.service.get_patient``), criteria are ``POST /patients/search``'s
(``patients.search.search_patients``), and no criterion is the list in id order
(``patients.service.list_patients``). ``bundle`` shapes the page, with its sealed links.
``match_for_create`` is the look-up of a conditional create (``If-None-Exist``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from chalicelib.audit.recording import FHIR_SEARCH_PATIENTS, AuditContext
from chalicelib.errors import NotSupported, PatientNotFound, ValidationFailed
from chalicelib.fhir import cursor
from chalicelib.fhir.answers import base_url
from chalicelib.fhir.patient import patient_resource
from chalicelib.fhir.requests import IF_NONE_EXIST, MAX_CONDITION_LENGTH
from chalicelib.fhir.search import FhirSearch, own_identifier, values_refused_as_unacceptable
from chalicelib.paging import DEFAULT_PER_PAGE
from chalicelib.service_layer.unit_of_work import ReadTransaction

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.config.settings import Settings
    from chalicelib.storage.models import PatientRecord


@dataclass(frozen=True)
class FhirPage:
    patients: Sequence[PatientRecord]
    next_after: int | None  # the position of the following page; None on the last one


def run(search: FhirSearch, reads: ReadTransaction, settings: Settings) -> FhirPage:
    """One page of the search, on the JSON API's services (each reads, audits and discloses as for
    the JSON API). Raises ValidationFailed, UnacceptableValue (the criteria's own checks)."""
    if search.patient_id is not None:
        from chalicelib.patients import service as patients

        try:
            found = patients.get_patient(
                reads, str(search.patient_id), durable_audit=settings.durable_read_audit
            )
        except PatientNotFound:
            return FhirPage((), None)
        return FhirPage((found,), None)
    per_page = search.count or DEFAULT_PER_PAGE
    if search.criteria:
        from chalicelib.patients import search as patient_search

        with values_refused_as_unacceptable() if search.from_form else nullcontext():
            page = patient_search.search_patients(
                reads,
                {**search.criteria, "per_page": per_page, "after": search.after},
                phone_region=settings.phone_default_region,
                durable_audit=settings.durable_read_audit,
            )
        return FhirPage(page.patients, page.next_after)
    from chalicelib.patients import service as patients

    listed = patients.list_patients(
        reads, None, str(per_page), str(search.after), durable_audit=settings.durable_read_audit
    )
    return FhirPage(listed.patients, listed.next_after)


def page_links(
    base: str, search: FhirSearch, page: FhirPage, principal: str, secret: bytes, plain_query: str | None
) -> tuple[str, str | None]:
    """The page's ``self`` and ``next`` links. ``plain_query``: the GET query that asked for this
    page, when it carries no patient data (then ``self`` repeats it); else ``self`` is sealed too."""
    if plain_query is not None:
        self_url = f"{base}/Patient" + (f"?{plain_query}" if plain_query else "")
    else:
        self_url = _continuation_url(base, cursor.seal(search.state(search.after), principal, secret))
    if page.next_after is None:
        return self_url, None
    return self_url, _continuation_url(base, cursor.seal(search.state(page.next_after), principal, secret))


def _continuation_url(base: str, token: str) -> str:
    return f"{base}/Patient?{urlencode({cursor.CURSOR: token})}"


def bundle(
    request: Request,
    search: FhirSearch,
    page: FhirPage,
    principal: str,
    secret: bytes,
    plain_query: str | None,
) -> dict[str, Any]:
    """The page as a searchset Bundle, with its self and next links."""
    base = base_url(request)
    self_url, next_url = page_links(base, search, page, principal, secret, plain_query)
    return searchset(base, [patient_resource(patient) for patient in page.patients], self_url, next_url)


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
    if len(condition) > MAX_CONDITION_LENGTH:
        raise ValidationFailed(f"{IF_NONE_EXIST} is too long", field=IF_NONE_EXIST)
    # A header's value the document admits and a rule refuses (an email's shape…) is a 422.
    with values_refused_as_unacceptable():
        return _match(condition, audit, settings)


def _match(condition: str, audit: AuditContext, settings: Settings) -> PatientRecord | None:
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
