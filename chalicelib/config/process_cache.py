"""Process caches: what a process builds once from its settings (the settings themselves, engines,
clients) and keeps. Each is declared with ``process_cache``, so that one call forgets them all:
``chalicelib.bootstrap.reset_for_tests``, when a test changes the environment.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_forgetters: list[Callable[[], None]] = []


def process_cache(
    maxsize: int | None = 1,
) -> Callable[[Callable[..., T]], functools._lru_cache_wrapper[T]]:
    """``functools.lru_cache``, registered to be forgotten by ``forget_process_caches``."""

    def decorate(function: Callable[..., T]) -> functools._lru_cache_wrapper[T]:
        cached = functools.lru_cache(maxsize=maxsize)(function)
        _forgetters.append(cached.cache_clear)
        return cached

    return decorate


def on_forget(forget: Callable[[], None]) -> None:
    """Run ``forget`` with every forget: for what a cache clear alone would leak (an engine's pool)."""
    _forgetters.insert(0, forget)


def forget_process_caches() -> None:
    for forget in list(_forgetters):
        forget()
