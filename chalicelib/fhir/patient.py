"""A patient as a FHIR R4 ``Patient``, and a ``Patient`` as the patient service's input.

The mapping (docs/fhir.md shows it as a table):

- ``id`` <-> ``Patient.id``, and an ``identifier`` with this API's system (``IDENTIFIER_SYSTEM``);
- ``name`` <-> ``Patient.name[0].text``: the model keeps one string, so none is split into
  family/given; on input ``family`` and ``given`` are accepted only to be joined (given names,
  then the family name, separated by spaces) when no ``text`` is sent;
- ``email`` / ``phone`` <-> ``Patient.telecom`` with ``system`` ``email`` / ``phone``;
- ``version`` / ``updated_at`` <-> ``meta.versionId`` / ``meta.lastUpdated`` (and ``ETag: W/"<version>"``).

Any other element (``birthDate``, ``gender``, ``address``, ``active``, a second name, a telecom
of another system, an identifier of another system…) has no place in the model: it is refused
(NotSupported, 422), never dropped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chalicelib.errors import MalformedRequest, NotSupported, UnacceptableValue, ValidationFailed
from chalicelib.shapes import iso_utc
from chalicelib.validation import VISIBLE_TEXT

if TYPE_CHECKING:
    from chalicelib.storage.models import Patient, PatientRecord

# This API's identifier system: the identifier whose value is the API's id (GET /patients/{id}).
IDENTIFIER_SYSTEM = "urn:telehealth-api:patient-id"
RESOURCE_TYPE = "Patient"
# The elements a Patient may carry in: what the model holds, and what the server sets itself.
ACCEPTED_ELEMENTS = frozenset({"resourceType", "id", "meta", "identifier", "name", "telecom"})
# meta's elements the server sets (read back as sent, ignored); others (tags, profiles) it cannot keep.
SERVER_META = frozenset({"versionId", "lastUpdated"})
NAME_ELEMENTS = frozenset({"text", "family", "given"})
TELECOM_ELEMENTS = frozenset({"system", "value"})
TELECOM_SYSTEMS = ("email", "phone")
# The parts of a name, joined, fit the name's 200 characters: 4 x 24 + 100 + 4 spaces.
FAMILY_MAX_LENGTH = 100
GIVEN_MAX_LENGTH = 24
GIVEN_MAX_COUNT = 4


def patient_resource(patient: Patient | PatientRecord) -> dict[str, Any]:
    """The patient as a FHIR Patient, in full (for tokens that may read patients)."""
    telecom = [{"system": "email", "value": patient.email}]
    if patient.phone is not None:
        telecom.append({"system": "phone", "value": patient.phone})
    return {
        "resourceType": RESOURCE_TYPE,
        "id": str(patient.id),
        "meta": {"versionId": str(patient.version), "lastUpdated": iso_utc(patient.updated_at)},
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": str(patient.id)}],
        "name": [{"text": patient.name}],
        "telecom": telecom,
    }


def patient_fields(resource: Any, *, url_id: str | None = None) -> dict[str, Any]:
    """The patient service's payload (``name``, ``email``, ``phone``) from a FHIR Patient.

    For an update (``url_id`` given) the resource is the whole patient: its ``id`` must be the
    URL's, and a missing phone clears it. Raises MalformedRequest (not a Patient), ValidationFailed
    (an element of the wrong shape, an id that is not the URL's), NotSupported (an element the model
    cannot hold). The values themselves are checked by the patient service, as on the JSON face.
    """
    if not isinstance(resource, dict):
        raise MalformedRequest("Request body must be a FHIR Patient resource (a JSON object)")
    if resource.get("resourceType") != RESOURCE_TYPE:
        raise ValidationFailed("resourceType must be Patient", field="resourceType")
    unsupported = sorted(set(resource) - ACCEPTED_ELEMENTS)
    if unsupported:
        raise NotSupported(
            f"This server cannot store Patient.{unsupported[0]}: only name, telecom (email, phone) and"
            " its own identifier are kept; nothing is dropped silently, so remove it",
            field=f"Patient.{unsupported[0]}" if _plain(unsupported[0]) else None,
        )
    _check_id(resource.get("id"), url_id)
    _check_meta(resource.get("meta"))
    _check_identifiers(resource.get("identifier"), url_id)
    fields: dict[str, Any] = {}
    name = _name(resource.get("name"))
    if name is not None:
        fields["name"] = name
    fields.update(_telecom(resource.get("telecom")))
    if url_id is not None:
        fields.setdefault("phone", None)  # an update replaces the whole patient
    return fields


def _check_id(value: Any, url_id: str | None) -> None:
    if value is not None and not isinstance(value, str):
        # Ignored on a create, but a Patient whose id is not a string is not a Patient.
        raise ValidationFailed("Patient.id must be a string", field="Patient.id")
    if url_id is None:
        return  # a create's id is the server's to choose: FHIR says to ignore one sent
    if value is None:
        raise ValidationFailed(
            "Patient.id is required in an update, and must be the id in the URL", field="Patient.id"
        )
    if value != url_id:
        # FHIR says 400; a 422 here, as for every value the document admits and a rule refuses.
        raise UnacceptableValue("Patient.id must be the id in the URL", field="Patient.id")


def _check_meta(meta: Any) -> None:
    if meta is None:
        return
    if not isinstance(meta, dict):
        raise ValidationFailed("Patient.meta must be an object", field="Patient.meta")
    unsupported = sorted(set(meta) - SERVER_META)
    if unsupported:
        raise NotSupported(
            f"This server cannot store Patient.meta.{unsupported[0]}",
            field=f"Patient.meta.{unsupported[0]}" if _plain(unsupported[0]) else None,
        )


def _check_identifiers(identifiers: Any, url_id: str | None) -> None:
    """Only this API's own identifier, naming the patient itself (on an update, the URL's id)."""
    if identifiers is None:
        return
    if not isinstance(identifiers, list):
        raise ValidationFailed("Patient.identifier must be an array", field="Patient.identifier")
    for identifier in identifiers:
        if not isinstance(identifier, dict) or identifier.get("system") != IDENTIFIER_SYSTEM:
            raise NotSupported(
                f"This server keeps no identifier but its own ({IDENTIFIER_SYSTEM}, the patient's id)",
                field="Patient.identifier",
            )
        if set(identifier) - {"system", "value"} or identifier.get("value") != url_id:
            raise UnacceptableValue(
                f"The {IDENTIFIER_SYSTEM} identifier is the server's: its value is the patient's id",
                field="Patient.identifier",
            )


def _name(names: Any) -> str | None:
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(name, dict) for name in names):
        raise ValidationFailed("Patient.name must be an array of HumanName", field="Patient.name")
    if len(names) > 1:
        raise NotSupported("This server keeps one name per patient", field="Patient.name")
    if not names:
        return None
    name = names[0]
    unsupported = sorted(set(name) - NAME_ELEMENTS)
    if unsupported:
        raise NotSupported(
            f"This server keeps a name as one string (HumanName.text): it cannot store name.{unsupported[0]}",
            field="Patient.name",
        )
    text = name.get("text")
    parts = _joined_parts(name)
    if text is None:
        if parts is None:
            raise ValidationFailed("Patient.name needs text, or family and/or given", field="Patient.name")
        return parts
    if parts is not None and parts != text:  # (NotSupported: a 422 too)
        raise NotSupported(
            "name.text and name.family/given disagree: this server keeps one string (send text alone)",
            field="Patient.name",
        )
    if not isinstance(text, str):
        raise ValidationFailed("name.text must be a string", field="Patient.name")
    return text


def _joined_parts(name: dict[str, Any]) -> str | None:
    """The given names then the family name, joined by spaces; None when neither is sent. Each part
    is bounded (``FAMILY_MAX``, ``GIVEN_MAX``…) so that the joined name fits the name's limit."""
    given = name.get("given", [])
    family = name.get("family")
    if not isinstance(given, list) or not all(_part(word, GIVEN_MAX_LENGTH) for word in given):
        raise ValidationFailed(
            f"name.given must be 1 to {GIVEN_MAX_COUNT} strings of at most {GIVEN_MAX_LENGTH} characters,"
            " each with a visible one",
            field="Patient.name",
        )
    if len(given) > GIVEN_MAX_COUNT or ("given" in name and not given):
        raise ValidationFailed(f"name.given must hold 1 to {GIVEN_MAX_COUNT} names", field="Patient.name")
    if family is not None and not _part(family, FAMILY_MAX_LENGTH):
        raise ValidationFailed(
            f"name.family must be a string of at most {FAMILY_MAX_LENGTH} characters with a visible one",
            field="Patient.name",
        )
    words = [*given, *([family] if family is not None else [])]
    return " ".join(word.strip() for word in words) if words else None


def _part(value: Any, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and bool(re.fullmatch(VISIBLE_TEXT, value))


def _telecom(points: Any) -> dict[str, Any]:
    if points is None:
        return {}
    if not isinstance(points, list) or not all(isinstance(point, dict) for point in points):
        raise ValidationFailed("Patient.telecom must be an array of ContactPoint", field="Patient.telecom")
    found: dict[str, Any] = {}
    for point in points:
        unsupported = sorted(set(point) - TELECOM_ELEMENTS)
        if unsupported:
            raise NotSupported(
                "This server keeps a telecom's system and value only: it cannot store"
                f" telecom.{unsupported[0]}",
                field="Patient.telecom",
            )
        system = point.get("system")
        if system not in TELECOM_SYSTEMS:
            raise NotSupported(
                "This server keeps one email and one phone: telecom.system must be email or phone",
                field="Patient.telecom",
            )
        if system in found:
            raise NotSupported(f"This server keeps one {system} per patient", field="Patient.telecom")
        if not isinstance(point.get("value"), str):
            # Not null: on FHIR's face a phone is cleared by leaving it out of an update.
            raise ValidationFailed(f"telecom.value of the {system} must be a string", field="Patient.telecom")
        found[system] = point["value"]
    return found


def _plain(name: str) -> bool:
    return name.isascii() and name.replace("_", "").isalnum() and len(name) <= 40
