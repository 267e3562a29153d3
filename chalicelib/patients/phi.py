"""Which query parameter names announce patient data: such data never belongs in a URL.

A URL is copied where a body is not: API Gateway's and proxies' access logs, browser history,
``Referer`` headers, monitoring. So a query parameter *named* like a patient field is refused on
every route before anything else reads the query (``chalicelib.http.requests``), and its value is
never looked at, repeated or logged; a search by those fields goes in the body of
``POST /patients/search``.

The names: this API's own fields (``name``, ``email``, ``phone``), FHIR Patient's search
parameters that carry identifying data (``given``, ``family``, ``telecom``, ``birthdate``,
``address`` and its ``address-city``…, ``identifier``, ``phonetic``, ``death-date``), and the usual
spellings of the same (``first_name``, ``lastName``, ``dob``, ``date_of_birth``, ``mobile``, ``zip``,
``postal_code``, ``ssn``, ``mrn``, ``fax``). Compared after Unicode compatibility folding and
case folding, word by word: a name is refused when one of its words (split at ``_ - .``, spaces
and camelCase humps), or the words of one part (parts are split at any other character) run
together, is in the list. So
``NAME``, ``family:exact`` (a FHIR modifier), ``address-postalcode``, ``phoneNumber`` and
``birth_date`` are refused; ``page``, ``per_page``, ``patient_id``, ``status`` are not.
"""

from __future__ import annotations

import re
import unicodedata

PATIENT_DATA_WORDS = frozenset(
    {
        # this API's fields
        "name",
        "email",
        "phone",
        # FHIR Patient's identifying search parameters (address-city etc. contain "address")
        "given",
        "family",
        "telecom",
        "birthdate",
        "address",
        "identifier",
        "phonetic",
        "deathdate",
        # common spellings of the same
        "firstname",
        "lastname",
        "fullname",
        "surname",
        "middlename",
        "dob",
        "dateofbirth",
        "birthday",
        "mobile",
        "phonenumber",
        "emailaddress",
        "zip",
        "zipcode",
        "postalcode",
        "postcode",
        "ssn",
        "mrn",
        "fax",
    }
)

_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Parts of a name are separated by anything but letters, digits and the word joiners ``_ - .`` and
# space (a FHIR modifier's colon, a NUL…); the words of a part run together (first_name: firstname).
_PARTS = re.compile(r"[^0-9a-z_. -]+")
_JOINERS = re.compile(r"[_. -]+")


def names_patient_data(parameter_name: str) -> bool:
    """Whether a query parameter called ``parameter_name`` would carry patient data."""
    folded = _HUMP.sub(" ", unicodedata.normalize("NFKC", parameter_name)).casefold()
    for part in _PARTS.split(folded):
        words = [word for word in _JOINERS.split(part) if word]
        if "".join(words) in PATIENT_DATA_WORDS or any(word in PATIENT_DATA_WORDS for word in words):
            return True
    return False
