"""The sample patients, defined once; a test that needs a difference derives it from these."""

from __future__ import annotations

from typing import Any

JOHN: dict[str, Any] = {"name": "John Doe", "email": "john.doe@example.com", "phone": "123-456-7890"}
JANE: dict[str, Any] = {"name": "Jane Roe", "email": "jane.roe@example.com", "phone": "+1 415 555 0100"}

# For tests that look for a patient's data where it must not be (logs, metrics, the broker, the
# audit trail): values that cannot turn up by chance (in ids, base64, timestamps), unlike "Jane" or "555".
DISTINCTIVE_PATIENT: dict[str, Any] = {
    "name": "Zelda Quixote-Marchbanks",
    "email": "zelda.quixote@clinic-example.org",
    "phone": "+1 415 555 0199",
}
# Lower-case fragments of each of its values, so that re-encodings (lower case, digits only) are caught.
DISTINCTIVE_FRAGMENTS = (
    "zelda",
    "quixote",
    "marchbanks",
    "clinic-example",
    "4155550199",
    "555 0199",
    "5550199",
)


def without_phone(patient: dict[str, Any]) -> dict[str, Any]:
    """``patient`` with no phone: its create asks for an email notification only."""
    return {key: value for key, value in patient.items() if key != "phone"}


def numbered(patient: dict[str, Any], number: int) -> dict[str, Any]:
    """``patient`` with an email of its own, ``local+number@domain``: one of many distinct patients."""
    local, domain = patient["email"].split("@")
    return {**patient, "email": f"{local}+{number}@{domain}"}
