"""Each subscriber's webhook secrets, kept in the job store: the registry issues and rotates
them, the delivery service reads them to sign (one database both can reach, no extra hop)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from shared.contracts.base import utc_now
from shared.jobstore.tables import WebhookSecret

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SubscriberSecrets:
    """What signs a subscriber's webhooks: always `current`, and `previous` until it lapses."""

    current: str
    previous: str | None = None
    previous_valid_until: datetime | None = None

    def valid_at(self, now: datetime) -> list[str]:
        """The secrets to sign with at `now`, newest first."""
        if self.previous is None or self.previous_valid_until is None:
            return [self.current]
        if _utc(self.previous_valid_until) <= now:
            return [self.current]
        return [self.current, self.previous]


@dataclass(frozen=True)
class IssuedSecret:
    """A secret just issued: shown to its subscriber this once."""

    subscriber: str
    secret: str
    previous_valid_until: datetime | None


class WebhookSecretStore:
    """Issue, rotate and read subscribers' secrets."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def rotate(self, subscriber: str, *, overlap: timedelta) -> IssuedSecret:
        """Give `subscriber` a new secret; the one it had stays valid for `overlap`."""
        now = utc_now()
        fresh = new_webhook_secret()
        with Session(self.engine) as session:
            row = session.get(WebhookSecret, subscriber, with_for_update=True)
            valid_until = None
            if row is None:
                row = WebhookSecret(subscriber=subscriber, secret=fresh, rotated_at=now)
            else:
                valid_until = now + overlap if overlap > timedelta(0) else None
                row.previous_secret = row.secret if valid_until is not None else None
                row.previous_valid_until = valid_until
                row.secret = fresh
                row.rotated_at = now
            session.add(row)
            session.commit()
        return IssuedSecret(subscriber=subscriber, secret=fresh, previous_valid_until=valid_until)

    def secrets_of(self, subscribers: Sequence[str]) -> dict[str, SubscriberSecrets]:
        """The stored secrets of those of `subscribers` that have any."""
        if not subscribers:
            return {}
        with Session(self.engine) as session:
            rows = session.exec(
                select(WebhookSecret).where(col(WebhookSecret.subscriber).in_(list(subscribers)))
            ).all()
            return {
                row.subscriber: SubscriberSecrets(
                    current=row.secret,
                    previous=row.previous_secret,
                    previous_valid_until=row.previous_valid_until,
                )
                for row in rows
            }
