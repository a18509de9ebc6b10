"""Which model version a request is validated against, and who is calling."""

from __future__ import annotations

import re

from shared.clients.authentication import Caller
from shared.contracts import DeploymentState

_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
MODEL_NAME_RULE = "lower case letters, digits, '.', '_' or '-', at most 128 characters"


def is_model_name(name: str) -> bool:
    """Whether a registered model could have this name (also keeps odd paths off the registry)."""
    return _MODEL_NAME.fullmatch(name) is not None


def may_read(caller: Caller, owner: str | None) -> bool:
    """A job submitted through the gateway belongs to its key; admins see every job. A job
    published straight to Kafka has no owner, so only admins see it (its request id alone
    proves nothing about who sent it)."""
    return caller.role == "admin" or (owner is not None and owner == caller.name)


class NoProductionVersion(Exception):
    """The model exists but nothing serves it unless the caller pins a version."""


def version_to_validate(deployment: DeploymentState, pinned: int | None) -> int:
    """The pinned version, else production: the signature a request must fit.

    Canary and shadow versions are a worker's routing choice; a canary whose signature
    differs from production is the publisher's mistake and shows up as failed jobs.
    """
    if pinned is not None:
        return pinned
    if deployment.production is None:
        raise NoProductionVersion
    return deployment.production
