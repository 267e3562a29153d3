"""Delivery providers: how a notification reaches a patient on each channel.

``log`` (the default) writes one structured line per channel and sends
nothing anywhere; ``ses`` sends email and ``sns`` sends SMS through boto3,
imported on first use. ``NOTIFY_PROVIDER`` lists the providers to use; each
channel goes through the first listed provider that serves it.

The message itself carries no patient data: it tells the patient that their
record changed. Only the address (email or phone number) leaves the process,
and only towards the provider that needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.config.process_cache import process_cache
from chalicelib.notifications.events import EMAIL, PATIENT_CREATED, PATIENT_UPDATED, SMS

logger = logging.getLogger("telehealth.notifications")

SUBJECTS = {
    PATIENT_CREATED: "Your telehealth patient record was created",
    PATIENT_UPDATED: "Your telehealth patient record was updated",
}
BODY = "{subject}. Sign in to your patient portal to see it. Reference: {notification_id}"


@dataclass(frozen=True)
class Recipient:
    """Where to reach the patient. Never logged: repr hides both fields."""

    email: str = field(repr=False)
    phone_e164: str | None = field(repr=False)


@dataclass(frozen=True)
class OutgoingNotification:
    notification_id: str
    patient_id: int
    event: str
    correlation_id: str | None
    attempt: int

    @property
    def subject(self) -> str:
        return SUBJECTS.get(self.event, "Your telehealth patient record changed")

    @property
    def text(self) -> str:
        return BODY.format(subject=self.subject, notification_id=self.notification_id)

    def log_fields(self) -> dict[str, Any]:
        return {
            "notification_id": self.notification_id,
            "patient_id": self.patient_id,
            "event": self.event,
            "attempt": self.attempt,
            "correlation_id": self.correlation_id,
        }


class Provider(Protocol):
    name: str
    channels: frozenset[str]

    def send(self, channel: str, recipient: Recipient, message: OutgoingNotification) -> None: ...


class LogProvider:
    """Delivers by writing a line to the worker log: ids only, nothing leaves the machine."""

    name = "log"
    channels = frozenset({EMAIL, SMS})

    def send(self, channel: str, recipient: Recipient, message: OutgoingNotification) -> None:
        fields = {"provider": self.name, "channel": channel}
        logger.info("notification sent", extra={**fields, **message.log_fields()})


class SesProvider:
    name = "ses"
    channels = frozenset({EMAIL})

    def __init__(self, sender: str) -> None:
        self.sender = sender  # NOTIFY_EMAIL_SENDER, an address SES has verified

    def send(self, channel: str, recipient: Recipient, message: OutgoingNotification) -> None:
        delivery_client("ses").send_email(
            Source=self.sender,
            Destination={"ToAddresses": [recipient.email]},
            Message={
                "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"}},
            },
        )


class SnsProvider:
    name = "sns"
    channels = frozenset({SMS})

    def send(self, channel: str, recipient: Recipient, message: OutgoingNotification) -> None:
        if recipient.phone_e164 is None:
            raise MissingAddress("the patient has no phone number")
        delivery_client("sns").publish(PhoneNumber=recipient.phone_e164, Message=message.text)


class MissingAddress(Exception):
    """The patient cannot be reached on this channel any more. The message is safe to store."""


def build_provider(name: str, email_sender: str) -> Provider:
    if name == SesProvider.name:
        return SesProvider(email_sender)
    if name == SnsProvider.name:
        return SnsProvider()
    return LogProvider()


@process_cache(maxsize=8)
def providers_by_channel(names: tuple[str, ...], email_sender: str) -> Mapping[str, Provider]:
    """Each channel's provider: the first of ``names`` that serves it. Channels none serves are absent."""
    chosen: dict[str, Provider] = {}
    for name in names:
        provider = build_provider(name, email_sender)
        for channel in sorted(provider.channels):
            chosen.setdefault(channel, provider)
    return chosen


@process_cache(maxsize=4)
def delivery_client(service: str) -> Any:
    """One boto3 client per service and process, for delivering: short timeouts and few retries,
    so that an attempt ends well inside a worker's claim (settings are read with boto3's
    defaults instead: ``chalicelib.config.secrets.secrets_client``)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client(service, config=config)
