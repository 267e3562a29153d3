"""Celery worker for notification delivery: ``celery -A local_worker worker``."""

from local_worker.celery import app

__all__ = ["app"]
