"""Every metric the code emits, declared once: its name, unit, dimension sets, who emits it and why.

``chalicelib.observability.metrics`` writes only metrics declared here, and the deployment
templates (``deploy.monitoring``) build their alarms and dashboard from this list, so an alarm
cannot watch a metric nobody emits. Dimensions are few and low-cardinality: ``Service`` (from
``chalicelib.config.metrics``), ``Route`` (the route template, ``/patients/{patient_id}``, never
the path) and ``StatusClass`` (``2xx`` … ``5xx``). No dimension or property ever holds patient
data, a token or a principal.
"""

from __future__ import annotations

from typing import NamedTuple

# CloudWatch's unit names, as EMF spells them.
COUNT = "Count"
MILLISECONDS = "Milliseconds"
SECONDS = "Seconds"

SERVICE = "Service"
ROUTE = "Route"
STATUS_CLASS = "StatusClass"
DIMENSIONS = (SERVICE, ROUTE, STATUS_CLASS)

# Who writes the metric: the API's function, the authorizer's, the worker, a scheduled function.
API, AUTHORIZER, WORKER, RELAY, PURGE = "api", "authorizer", "worker", "relay", "purge"


# A NamedTuple, not a dataclass: every cold start builds this class, and a frozen dataclass costs ~10x more.
class Metric(NamedTuple):
    name: str
    unit: str
    # Each set is one CloudWatch metric (name + dimension values); every set starts with Service.
    dimension_sets: tuple[tuple[str, ...], ...]
    source: str
    description: str


BY_SERVICE = ((SERVICE,),)
BY_SERVICE_AND_ROUTE = ((SERVICE,), (SERVICE, ROUTE))

REQUESTS = Metric(
    "Requests",
    COUNT,
    ((SERVICE,), (SERVICE, ROUTE, STATUS_CLASS)),
    API,
    "requests the API's function answered, by route template and status class",
)
LATENCY = Metric(
    "Latency", MILLISECONDS, BY_SERVICE_AND_ROUTE, API, "time the function took to answer, by route template"
)
SERVER_ERRORS = Metric("ServerErrors", COUNT, BY_SERVICE, API, "answers with a 5xx status")
FORBIDDEN = Metric(
    "Forbidden", COUNT, BY_SERVICE_AND_ROUTE, API, "403: a valid token without the route's scope"
)
RATE_LIMITED = Metric("RateLimited", COUNT, BY_SERVICE_AND_ROUTE, API, "429: a principal over its rate limit")
AUDIT_UNAVAILABLE = Metric(
    "AuditUnavailable",
    COUNT,
    BY_SERVICE_AND_ROUTE,
    API,
    "503: an answer withheld because its audit row could not be written",
)
AUTHORIZER_REFUSALS = Metric(
    "AuthorizerRefusals", COUNT, BY_SERVICE, AUTHORIZER, "tokens the authorizer refused (a 401)"
)
NOTIFICATIONS_DELIVERED = Metric(
    "NotificationsDelivered", COUNT, BY_SERVICE, WORKER, "notifications delivered on every channel"
)
NOTIFICATIONS_RETRIED = Metric(
    "NotificationsRetried", COUNT, BY_SERVICE, WORKER, "delivery attempts that failed with a retry due"
)
NOTIFICATIONS_DEAD_LETTERED = Metric(
    "NotificationsDeadLettered",
    COUNT,
    BY_SERVICE,
    WORKER,
    "notifications whose last allowed attempt failed: status failed, a dead letter",
)
DELIVERY_LATENCY = Metric(
    "DeliveryLatency",
    MILLISECONDS,
    BY_SERVICE,
    WORKER,
    "from the commit of the change to the notification's delivery",
)
RELAY_HANDED_OFF = Metric(
    "RelayHandedOff", COUNT, BY_SERVICE, RELAY, "notifications a relay run handed to the broker again"
)
OLDEST_PENDING_AGE = Metric(
    "OldestPendingAge",
    SECONDS,
    BY_SERVICE,
    RELAY,
    "age of the oldest notification still pending after a relay run (0: none)",
)
OLDEST_QUEUED_AGE = Metric(
    "OldestQueuedAge",
    SECONDS,
    BY_SERVICE,
    RELAY,
    "age of the oldest notification handed to the broker that no worker has taken yet, after a relay"
    " run (0: none): how long the worker's queue makes a notification wait",
)
QUEUE_LENGTH = Metric(
    "QueueLength",
    COUNT,
    BY_SERVICE,
    RELAY,
    "messages waiting in the worker's Celery queue after a relay run (Redis LLEN): the worker "
    "service scales on it; not written when Redis cannot say",
)
IDEMPOTENCY_KEYS_PURGED = Metric(
    "IdempotencyKeysPurged", COUNT, BY_SERVICE, PURGE, "idempotency keys past 24 hours a purge run deleted"
)

METRICS: tuple[Metric, ...] = (
    REQUESTS,
    LATENCY,
    SERVER_ERRORS,
    FORBIDDEN,
    RATE_LIMITED,
    AUDIT_UNAVAILABLE,
    AUTHORIZER_REFUSALS,
    NOTIFICATIONS_DELIVERED,
    NOTIFICATIONS_RETRIED,
    NOTIFICATIONS_DEAD_LETTERED,
    DELIVERY_LATENCY,
    RELAY_HANDED_OFF,
    OLDEST_PENDING_AGE,
    OLDEST_QUEUED_AGE,
    QUEUE_LENGTH,
    IDEMPOTENCY_KEYS_PURGED,
)
