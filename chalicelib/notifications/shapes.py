"""The JSON shapes of notifications: ids and delivery states, never patient data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.shapes import iso_utc, page_json

if TYPE_CHECKING:
    from chalicelib.notifications.service import NotificationPage, NotificationView


def notification_json(view: NotificationView) -> dict[str, Any]:
    notification = view.notification
    return {
        "id": notification.id,
        "patient_id": notification.patient_id,
        "event": notification.event,
        "channels": notification.channel_list,
        "status": notification.status,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
        "correlation_id": notification.correlation_id,
        "created_at": iso_utc(notification.created_at),
        "updated_at": iso_utc(notification.updated_at),
        "delivered_at": iso_utc(notification.delivered_at) if notification.delivered_at else None,
        "task_state": view.task_state,
    }


def notification_page_json(page: NotificationPage) -> dict[str, Any]:
    return page_json(page, "notifications", [notification_json(view) for view in page.notifications])
