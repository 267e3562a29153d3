"""The broker, Celery on Redis: its configuration, the API's client, the hand-off of a notification
id to the worker, and the task states the result backend reports back.

The API hands off by task name through a minimal Celery client built on first
use, so a request that hands off nothing never imports Celery, and the API never
imports the worker's code. The broker message carries the notification id
only. A failed hand-off is logged and left to the relay: the outbox row,
committed before, is what guarantees delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from chalicelib.config import provided
from chalicelib.config.process_cache import on_forget, process_cache
from chalicelib.config.provided import BrokerSettings

logger = logging.getLogger("telehealth.notifications")

SEND_NOTIFICATION_TASK = "notifications.send_notification"
# The queue the API and the relay send to and the worker consumes (Celery's default, named so that
# both ends and the queue-length metric agree on it).
WORKER_QUEUE = "celery"
# kombu's Redis transport keeps a queue's messages of priority p > 0 under "<queue>\x06\x16<p>"
# (its default priority steps 3, 6, 9; 0 is the queue's own key). We send no priority; all are counted.
QUEUE_KEYS = (WORKER_QUEUE, *(f"{WORKER_QUEUE}\x06\x16{step}" for step in (3, 6, 9)))
UNKNOWN_TASK_STATE = "UNKNOWN"
# Celery's state for a task whose result the backend does not hold: not run yet, or its result gone.
NO_RESULT_TASK_STATE = "PENDING"
# What a finished notification reports instead: its result expired (after a week) or was lost with Redis.
EXPIRED_TASK_STATE = "EXPIRED"
# Celery's states and ours, as clients may see them.
CELERY_STATES = ("PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED")
TASK_STATES = (*CELERY_STATES, EXPIRED_TASK_STATE, UNKNOWN_TASK_STATE)


def celery_config(settings: BrokerSettings) -> dict[str, Any]:
    """Celery settings shared by the API's client and the worker, so both speak alike to Redis."""
    notify = settings.notifications
    connection = {
        "socket_connect_timeout": notify.broker_connect_timeout,
        "socket_timeout": max(5.0, notify.broker_connect_timeout),
    }
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_connection_timeout": notify.broker_connect_timeout,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            **connection,
            "visibility_timeout": notify.visibility_timeout,
            # Look for messages of dead workers often enough for the visibility timeout to matter.
            "unacked_restore_interval": max(1, min(60, notify.visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
        },
        "result_backend_transport_options": {
            "visibility_timeout": notify.visibility_timeout,
            "retry_policy": {"max_retries": 0},
        },
        "redis_socket_connect_timeout": notify.broker_connect_timeout,
        "redis_socket_timeout": max(5.0, notify.broker_connect_timeout),
        "redis_retry_on_timeout": False,
        "redis_backend_health_check_interval": 0,
        "task_default_queue": WORKER_QUEUE,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "result_expires": timedelta(days=7),
        "enable_utc": True,
    }


@process_cache()
def get_celery_client() -> Any:
    """The API's Celery app: no tasks of its own, it only sends tasks by name.

    It has no result backend: with one, every send would also subscribe to the
    task's result channel, which the API never waits on. ``get_result_backend``
    reads the states instead.
    """
    from celery import Celery

    config = celery_config(provided.BROKER())
    client = Celery("telehealth-api", set_as_current=False)
    client.conf.update(
        config,
        result_backend=None,
        # No retry loop in the request path: the relay hands the notification off again later.
        task_publish_retry=False,
        broker_transport_options={**config["broker_transport_options"], "max_retries": 0},
    )
    return client


@process_cache()
def get_result_backend() -> Any:
    from celery.backends.redis import RedisBackend

    return RedisBackend(app=get_celery_client(), url=provided.BROKER().redis_url)


def reset_celery_client() -> None:
    """Forget the cached client and backend (tests and configuration reloads)."""
    if get_celery_client.cache_info().currsize:
        get_celery_client().close()
    get_celery_client.cache_clear()
    get_result_backend.cache_clear()


on_forget(reset_celery_client)


def hand_off(notification_id: str) -> bool:
    """Hand the notification id to the worker (one send task published); False (and a log line)
    when the broker is unreachable or not configured."""
    if not provided.BROKER().redis_url:
        logger.warning(
            "notification not handed off: REDIS_URL is not set", extra={"notification_id": notification_id}
        )
        return False
    try:
        get_celery_client().send_task(
            SEND_NOTIFICATION_TASK, args=[notification_id], task_id=notification_id, retry=False
        )
    except Exception as error:
        # The class only: a broker error never carries patient data, but keep the habit.
        logger.warning(
            "notification not handed off; the relay will retry",
            extra={"notification_id": notification_id, "error": type(error).__name__},
        )
        return False
    return True


def queue_length() -> int | None:
    """Messages waiting in the worker's queue, not yet taken by a worker: the LLEN of its Redis
    keys, in one round trip. None (and a log line) when Redis is not configured or unreachable:
    an unknown length is not a zero, which would let the worker service scale in."""
    redis_url = provided.BROKER().redis_url
    if not redis_url:
        return None
    import redis

    timeout = provided.BROKER().notifications.broker_connect_timeout
    try:
        with redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout, socket_timeout=max(5.0, timeout)
        ) as client:
            pipeline = client.pipeline(transaction=False)
            for key in QUEUE_KEYS:
                pipeline.llen(key)
            return sum(int(length) for length in pipeline.execute())
    except Exception as error:
        logger.warning("queue length unavailable (%s)", type(error).__name__)
        return None


def task_states(task_ids: Sequence[str]) -> dict[str, str]:
    """Celery's state of each task from the Redis result backend; UNKNOWN when Redis cannot be read."""
    if not task_ids:
        return {}
    if not provided.BROKER().redis_url:
        return dict.fromkeys(task_ids, UNKNOWN_TASK_STATE)
    try:
        backend = get_result_backend()
        values = backend.mget([backend.get_key_for_task(task_id) for task_id in task_ids])
        states = {}
        for task_id, value in zip(task_ids, values, strict=True):
            states[task_id] = backend.decode_result(value)["status"] if value else NO_RESULT_TASK_STATE
        return states
    except Exception as error:
        logger.warning("task states unavailable (%s)", type(error).__name__)
        return dict.fromkeys(task_ids, UNKNOWN_TASK_STATE)
