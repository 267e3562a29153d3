"""The retention purge, a scheduled function: deletes what the API promised to keep no longer.

That is the idempotency keys past their 24 hours: each holds a patient's id and the hash of
the body that created it. Nothing else the API keeps holds patient data past a promise:
notifications and audit events hold ids and states only, and a deleted patient's rows go
with the delete.
"""

from typing import Any

from chalice.app import CloudWatchEvent

from chalicelib.config.schedules import get_schedule_settings
from chalicelib.http.schedules import scheduled
from chalicelib.observability.metrics import record_purge_run
from chalicelib.patients.idempotency import purge_expired_keys
from chalicelib.service_layer.unit_of_work import UnitOfWork


@scheduled(
    lambda: get_schedule_settings().purge_interval,
    "Deletes idempotency keys past their 24 hours (RETENTION_PURGE_INTERVAL)",
)
def purge_expired_records(event: CloudWatchEvent) -> dict[str, Any]:
    purged = purge_expired_keys(UnitOfWork())
    record_purge_run(purged)
    return {"idempotency_keys_purged": purged}
