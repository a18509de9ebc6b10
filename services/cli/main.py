"""The `modelbus` command: run services and manage topics, schemas and keys."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from services.cli.output import say

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
app.add_typer(registry_app, name="registry")
app.add_typer(gateway_app, name="gateway")
app.add_typer(inference_app, name="inference")
app.add_typer(delivery_app, name="delivery")
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


@delivery_app.command("new-secret")
def delivery_new_secret() -> None:
    """Print a fresh Standard Webhooks secret (whsec_...) for MODELBUS_WEBHOOK_SECRET."""
    from services.delivery.adapters.signing import new_webhook_secret

    say(new_webhook_secret())


@registry_app.command("create-key")
def registry_create_key(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. ci-pipeline.")],
    role: Annotated[str, typer.Option(help="reader, publisher, approver or admin.")],
) -> None:
    """Issue an API key straight in the registry's database; prints the token once."""
    from sqlmodel import Session

    from services.registry.adapters.api_keys import create_key
    from services.registry.adapters.database import make_engine, migrate
    from services.registry.domain.roles import Role
    from services.registry.settings import RegistrySettings

    try:
        chosen = Role(role)
    except ValueError:
        raise typer.BadParameter(f"role must be one of {[r.value for r in Role]}") from None
    settings = RegistrySettings()
    migrate(settings.database_url)
    with Session(make_engine(settings.database_url)) as session:
        try:
            token = create_key(session, name=name, role=chosen)
        except ValueError as error:
            say(f"error: {error}", err=True)
            raise typer.Exit(1) from None
    say(token)


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
) -> None:
    """Run the end-to-end scenario against the local stack (start it with `make up`)."""
    from services.cli.demo import run_demo

    run_demo(registry_url, gateway_url, http_count=http_requests, kafka_count=kafka_requests)


if __name__ == "__main__":
    app()
