"""The FHIR R4 face of the patient service: shapes only, no rules and no store of its own.

``functions/fhir_*.py`` parse a FHIR request with these modules, call the same services as the
JSON API (``chalicelib.patients``), and answer with what these modules build: plain dicts in
FHIR R4's JSON (no FHIR model library at run time). Loaded only when a FHIR route is called, so
the JSON routes' cold start never pays for it (``tests/deploy/test_cold_start_imports.py``).

- ``answers``: the media type, links and headers of FHIR answers;
- ``patient``: the mapping between a patient and a FHIR ``Patient``;
- ``outcome``: domain errors as ``OperationOutcome``s;
- ``search``, ``cursor``, ``searchset``: search parameters, the sealed continuation, a search run
  on the JSON API's services and its ``searchset`` Bundle;
- ``requests``: the format asked for, the body, FHIR's ``If-Match``;
- ``schemas``: the FHIR routes' schemas in the OpenAPI document;
- ``capability``: the ``CapabilityStatement`` of ``GET /fhir/metadata``.
"""
