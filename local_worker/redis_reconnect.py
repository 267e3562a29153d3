"""Keep the worker alive when Redis goes away and comes back.

On a lost broker connection, Celery 5.7 collects the connection, which
detaches the Redis channels from it, and reconnects with new channels. Work
still holding an old channel then reaches Redis through it: closing the
channel restores unacknowledged messages, and a task that finished during
the outage acknowledges its message. kombu 5.7 then fails with
``AttributeError: 'NoneType' object has no attribute 'hostname'`` (or
``'client'``), which no one expects, and the worker exits with
"Unrecoverable error" instead of carrying on.

An old channel's Redis is unreachable by definition, so we make it say so
with a connection error, which Celery already handles: the close skips the
restore, the acknowledgement is logged as failed. Either way the message
stays in Redis's unacked set and comes back after the visibility timeout
(where the delivery's claim makes a second run harmless), and if Redis lost it
the relay hands its notification off again.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

_connparams = kombu_redis.Channel._connparams


def _connparams_of_a_live_channel(self: Any, asynchronous: bool = False) -> Any:
    transport = self.connection
    if transport is None or transport.client is None:
        raise RedisConnectionError("this channel's broker connection was closed")
    return _connparams(self, asynchronous=asynchronous)


def keep_worker_alive_on_broker_loss() -> None:
    kombu_redis.Channel._connparams = _connparams_of_a_live_channel
