"""The `modelbus` command: run services and manage topics, schemas and keys."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.output import say

if TYPE_CHECKING:
    from shared.clients.registry import RegistryClient
    from shared.roles import Role

app = typer.Typer(
    help="modelbus: a Kafka-native MLOps platform. Run services, manage topics and contracts.",
    no_args_is_help=True,
)
registry_app = typer.Typer(help="The model registry service.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics of the platform.", no_args_is_help=True)
schemas_app = typer.Typer(help="Generated contract documents under schemas/.", no_args_is_help=True)
gateway_app = typer.Typer(help="The HTTP gateway: predict, jobs, feedback.", no_args_is_help=True)
inference_app = typer.Typer(help="The inference workers.", no_args_is_help=True)
delivery_app = typer.Typer(help="The webhook delivery service.", no_args_is_help=True)
feedback_app = typer.Typer(
    help="The feedback labelling service: joins feedback to predictions.", no_args_is_help=True
)
drift_app = typer.Typer(
    help="The drift analysis service: drift statistics on the streams, alerts.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys and their webhook secrets, through the registry's API.", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")
app.add_typer(gateway_app, name="gateway")
app.add_typer(inference_app, name="inference")
app.add_typer(delivery_app, name="delivery")
app.add_typer(feedback_app, name="feedback")
app.add_typer(drift_app, name="drift")
app.add_typer(keys_app, name="keys")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")

SchemasDir = Annotated[Path, typer.Option(help="Folder of the generated documents.")]


@registry_app.command("serve")
def registry_serve(
    host: Annotated[str | None, typer.Option(help="Bind address (MODELBUS_REGISTRY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MODELBUS_REGISTRY_PORT).")] = None,
) -> None:
    """Run the registry's HTTP API (migrates the database first)."""
    import uvicorn

    from services.registry.bootstrap import create_app
    from services.registry.settings import RegistrySettings
    from shared.runtime.logs import configure_logging

    settings = RegistrySettings()
    configure_logging("registry", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=host or settings.registry_host,
        port=port or settings.registry_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to the JSON log handler
    )


@gateway_app.command("serve")
def gateway_serve(
    host: Annotated[str | None, typer.Option(help="Bind address (MODELBUS_GATEWAY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (MODELBUS_GATEWAY_PORT).")] = None,
) -> None:
    """Run the HTTP gateway (needs MODELBUS_REGISTRY_API_KEY with at least the reader role)."""
    from services.gateway.entrypoints.server import run

    run(host, port)


@inference_app.command("run")
def inference_run() -> None:
    """Run an inference worker (needs MODELBUS_REGISTRY_API_KEY with the reader role).

    Start as many as `requests` has partitions; they share the consumer group.
    """
    from services.inference.entrypoints.worker import run

    run()


@delivery_app.command("run")
def delivery_run() -> None:
    """Run the webhook delivery worker (needs MODELBUS_WEBHOOK_SECRET)."""
    from services.delivery.entrypoints.worker import run

    run()


@feedback_app.command("run")
def feedback_run() -> None:
    """Run the feedback join: reads requests, predictions and feedback, publishes labels.

    Replicas share its consumer group and its database (MODELBUS_FEEDBACK_DATABASE_URL).
    """
    from services.feedback.entrypoints.worker import run

    run()


@drift_app.command("run")
def drift_run() -> None:
    """Run drift analysis: sketches requests, predictions and labels, judges them against
    each version's reference, publishes alert episodes on drift-alerts.

    Replicas share its two consumer groups; state is a compacted Kafka changelog.
    """
    from services.drift.entrypoints.worker import run

    run()


@delivery_app.command("new-secret")
def delivery_new_secret() -> None:
    """Print a fresh Standard Webhooks secret (whsec_...) for MODELBUS_WEBHOOK_SECRET."""
    from shared.jobstore.webhook_secrets import new_webhook_secret

    say(new_webhook_secret())


ROLE_HELP = "client, reader, reviewer, publisher, approver or admin."


@registry_app.command("create-key")
def registry_create_key(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. ci-pipeline.")],
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    owner: Annotated[
        str | None, typer.Option(help="Person or team owning the key (default: its name).")
    ] = None,
    ttl_days: Annotated[
        float | None, typer.Option(min=0.001, help="Days until the key expires (default never).")
    ] = None,
) -> None:
    """Issue an API key straight in the registry's database; prints the token once.

    Use `keys create` against a running registry to also get the key's webhook secret.
    """
    from datetime import timedelta

    from sqlmodel import Session

    from services.registry.adapters.api_keys import create_key
    from services.registry.adapters.database import make_engine, migrate
    from services.registry.settings import RegistrySettings
    from shared.contracts.base import utc_now

    chosen = _role(role)
    settings = RegistrySettings()
    migrate(settings.database_url)
    expires_at = utc_now() + timedelta(days=ttl_days) if ttl_days is not None else None
    with Session(make_engine(settings.database_url)) as session:
        try:
            token = create_key(session, name=name, role=chosen, owner=owner, expires_at=expires_at)
        except ValueError as error:
            say(f"error: {error}", err=True)
            raise typer.Exit(1) from None
    say(token)


def _role(role: str) -> Role:
    from shared.roles import Role

    try:
        return Role(role)
    except ValueError:
        raise typer.BadParameter(f"role must be one of {[r.value for r in Role]}") from None


RegistryUrl = Annotated[
    str, typer.Option(envvar="MODELBUS_REGISTRY_URL", help="Registry base URL.")
]
AdminKey = Annotated[
    str,
    typer.Option(
        envvar="MODELBUS_REGISTRY_API_KEY", help="Your API key (admin, or the key itself)."
    ),
]


@contextmanager
def _registry(url: str, api_key: str) -> Iterator[RegistryClient]:
    """A registry client whose refusals end the command with the registry's message."""
    from shared.clients.registry import RegistryCallFailed, RegistryClient

    with RegistryClient(url, api_key) as client:
        try:
            yield client
        except RegistryCallFailed as failure:
            say(f"error: {failure}", err=True)
            raise typer.Exit(1) from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. ci-pipeline.")],
    role: Annotated[str, typer.Option(help=ROLE_HELP)],
    api_key: AdminKey,
    registry_url: RegistryUrl = "http://127.0.0.1:8000",
    owner: Annotated[
        str | None, typer.Option(help="Person or team owning the key (default: its name).")
    ] = None,
    ttl_days: Annotated[
        float | None, typer.Option(min=0.001, help="Days until the key expires (default never).")
    ] = None,
) -> None:
    """Issue a key; prints its token and its webhook secret, both shown only this once."""
    _role(role)
    ttl = round(ttl_days * 86_400) if ttl_days is not None else None
    with _registry(registry_url, api_key) as registry:
        issued = registry.issue_api_key(name, role, owner=owner, ttl_seconds=ttl)
    say(f"key:            {issued['key']}")
    say(f"webhook secret: {issued['webhook_secret'] or '(none: registry keeps no secrets)'}")
    say(f"owner:          {issued['owner']}   expires: {issued['expires_at'] or 'never'}")


@keys_app.command("list")
def keys_list(api_key: AdminKey, registry_url: RegistryUrl = "http://127.0.0.1:8000") -> None:
    """Every key: role, owner, expiry, revocation (never a token)."""
    with _registry(registry_url, api_key) as registry:
        rows = registry.api_keys()
    for row in rows:
        state = "revoked" if row["revoked_at"] else f"expires {row['expires_at'] or 'never'}"
        say(f"{row['name']:<32} {row['role']:<10} owner={row['owner']:<24} {state}")


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key to revoke.")],
    api_key: AdminKey,
    registry_url: RegistryUrl = "http://127.0.0.1:8000",
) -> None:
    """Revoke a key now; gateways refuse it within MODELBUS_AUTH_CACHE_SECONDS."""
    with _registry(registry_url, api_key) as registry:
        row = registry.revoke_api_key(name)
    say(f"revoked {row['name']} at {row['revoked_at']}")


@keys_app.command("rotate-webhook-secret")
def keys_rotate_webhook_secret(
    name: Annotated[str, typer.Argument(help="The key whose webhook secret to rotate.")],
    api_key: AdminKey,
    registry_url: RegistryUrl = "http://127.0.0.1:8000",
    overlap_hours: Annotated[
        float | None, typer.Option(min=0, help="Hours the old secret still signs.")
    ] = None,
) -> None:
    """A new webhook secret, shown once; both are sent until the overlap ends."""
    overlap = overlap_hours * 3600 if overlap_hours is not None else None
    with _registry(registry_url, api_key) as registry:
        issued = registry.rotate_webhook_secret(name, overlap_seconds=overlap)
    say(f"webhook secret: {issued['webhook_secret']}")
    say(f"previous secret valid until: {issued['previous_valid_until'] or '(none)'}")


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(help="Override every topic's partition count.")
    ] = None,
) -> None:
    """Create missing topics (and grow partitions) on MODELBUS_KAFKA_BOOTSTRAP."""
    from shared.kafka.admin import ensure_topics
    from shared.settings import ModelbusSettings

    settings = ModelbusSettings()
    outcomes = asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap,
            prefix=settings.topic_prefix,
            partitions_override=partitions,
            security=settings.kafka_security,
        )
    )
    for outcome in outcomes:
        say(f"{outcome.name:<24} {outcome.action:<10} partitions={outcome.partitions}")


@schemas_app.command("generate")
def schemas_generate(directory: SchemasDir = Path("schemas")) -> None:
    """Regenerate JSON Schemas and the AsyncAPI document from the contract models."""
    from shared.schema_export import write_all

    for path in write_all(directory):
        say(f"wrote {path}")


@schemas_app.command("check")
def schemas_check(directory: SchemasDir = Path("schemas")) -> None:
    """Fail when schemas/ differs from what the contract models generate."""
    from shared.schema_export import stale_files

    stale = stale_files(directory)
    if stale:
        say(f"out of date: {', '.join(stale)}; run `modelbus schemas generate`", err=True)
        sys.exit(1)
    say("schemas are up to date")


@app.command("demo")
def demo(
    registry_url: Annotated[str, typer.Option(help="Registry base URL.")] = "http://127.0.0.1:8000",
    gateway_url: Annotated[str, typer.Option(help="Gateway base URL.")] = "http://127.0.0.1:8080",
    http_requests: Annotated[int, typer.Option(help="Requests sent through the gateway.")] = 500,
    kafka_requests: Annotated[int, typer.Option(help="Requests published to Kafka.")] = 2500,
    feedback_url: Annotated[
        str, typer.Option(help="Feedback service base URL.")
    ] = "http://127.0.0.1:8005",
    drift_url: Annotated[str, typer.Option(help="Drift service base URL.")] = (
        "http://127.0.0.1:8006"
    ),
) -> None:
    """Run the end-to-end scenario against the local stack (start it with `make up`)."""
    from services.cli.demo import run_demo

    run_demo(
        registry_url,
        gateway_url,
        http_count=http_requests,
        kafka_count=kafka_requests,
        feedback_url=feedback_url,
        drift_url=drift_url,
    )


if __name__ == "__main__":
    app()
