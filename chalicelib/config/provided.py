"""Settings slices the adapters need and the composition root provides.

Storage needs its database settings and the broker its Redis settings, but neither reads the
environment nor knows the whole ``Settings``: each asks its slice here, and ``chalicelib.bootstrap``
(the one place that reads the environment) says where each slice comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.notifications import NotificationSettings

T = TypeVar("T")


class DatabaseSettings(NamedTuple):
    url: str
    sqlite_busy_timeout_ms: int
    pool: str
    pool_size: int
    max_overflow: int


class BrokerSettings(NamedTuple):
    redis_url: str | None
    notifications: NotificationSettings


class Provided(Generic[T]):
    """A slice whose source ``chalicelib.bootstrap`` sets; asking before that is a configuration error."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._source: Callable[[], T] | None = None

    def provide(self, source: Callable[[], T]) -> None:
        self._source = source

    def __call__(self) -> T:
        if self._source is None:
            raise ConfigurationError(f"{self._what} are not provided: chalicelib.bootstrap provides them")
        return self._source()


DATABASE: Provided[DatabaseSettings] = Provided("the database settings")
BROKER: Provided[BrokerSettings] = Provided("the broker settings")
