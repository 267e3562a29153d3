"""What the worker's container image and its ECS task definition agree on, declared once.

``deploy.worker_service`` writes these into the task definition (SAM and Terraform); the worker's
Dockerfile and its test (issue 23, item 1) read the same names: the command's pool and concurrency
come from ``WORKER_POOL`` / ``WORKER_CONCURRENCY`` (as under ``make run``), and a stopped worker
must finish its running tasks within ``WORKER_STOP_TIMEOUT_SECONDS`` of SIGTERM (Celery's warm
shutdown), after which ECS sends SIGKILL.
"""

from __future__ import annotations

from chalicelib.notifications.delivery import OUTCOME_WRITE_PAUSES

# The longest a ``send_notification`` task runs, worst case, from the timeouts it works under:
# a claim that waits out the database's connect timeout, then each channel (email, SMS) through a
# delivery client that tries twice, each try bounded by its connect and read timeouts
# (``chalicelib.notifications.providers.delivery_client``), then the outcome's write tried once
# more per pause, each try waiting out the connect timeout again.
DATABASE_CONNECT_TIMEOUT_SECONDS = 5  # chalicelib.storage.database.build_engine
DELIVERY_TRY_SECONDS = 3 + 10  # connect_timeout + read_timeout of the delivery client
DELIVERY_TRIES = 2  # its retries' max_attempts
CHANNELS = 2  # email and SMS
LONGEST_TASK_SECONDS = (
    DATABASE_CONNECT_TIMEOUT_SECONDS
    + CHANNELS * DELIVERY_TRIES * DELIVERY_TRY_SECONDS
    + (len(OUTCOME_WRITE_PAUSES) + 1) * DATABASE_CONNECT_TIMEOUT_SECONDS
    + sum(OUTCOME_WRITE_PAUSES)
)
# Fargate's largest stopTimeout: between SIGTERM and SIGKILL, a warm shutdown finishes what it
# started. A task cut off anyway is not lost (acks_late; the relay takes back expired claims).
FARGATE_MAX_STOP_TIMEOUT_SECONDS = 120
WORKER_STOP_TIMEOUT_SECONDS = FARGATE_MAX_STOP_TIMEOUT_SECONDS

# The worker's command reads its pool and concurrency from these (the Procfile's names).
WORKER_POOL_VARIABLE = "WORKER_POOL"
WORKER_CONCURRENCY_VARIABLE = "WORKER_CONCURRENCY"
# SES and SNS deliveries wait on the network: threads overlap them (docs/deployment.md, section 5).
DEFAULT_WORKER_POOL = "threads"
DEFAULT_WORKER_CONCURRENCY = 16
WORKER_COMMAND = (
    "celery -A local_worker worker --loglevel=INFO"
    f" --pool=${WORKER_POOL_VARIABLE} --concurrency=${WORKER_CONCURRENCY_VARIABLE}"
    " --without-mingle --without-gossip"
)

# The image runs as this user (not root); the task definition names it too, so ECS refuses to run
# an image that would otherwise start as root.
WORKER_USER = "10001:10001"
# The only writable path of the container (its root file system is read-only): Celery and Python
# may want a temporary directory.
WORKER_TMP_DIR = "/tmp"  # noqa: S108 - the container's own scratch volume, not a shared /tmp
