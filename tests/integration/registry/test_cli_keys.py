"""`modelbus keys ...` against a running registry: issue, list, rotate and revoke."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from devtools.kafka_broker import KafkaBroker
from devtools.live_registry import ADMIN_KEY, live_registry
from services.cli.main import app

pytestmark = [pytest.mark.kafka]


def test_keys_are_issued_listed_rotated_and_revoked_from_the_cli(
    tmp_path: Path, kafka_broker: KafkaBroker, topic_prefix: str
) -> None:
    runner = CliRunner()
    with live_registry(
        data_dir=tmp_path, kafka_bootstrap=kafka_broker.bootstrap, topic_prefix=topic_prefix
    ) as registry:
        common = ["--registry-url", registry.url, "--api-key", ADMIN_KEY]
        created = runner.invoke(
            app,
            [
                "keys",
                "create",
                "--name",
                "shop-app",
                "--role",
                "client",
                "--owner",
                "shop",
                "--ttl-days",
                "30",
                *common,
            ],
        )
        token = re.search(r"key:\s+(\S+)", created.output)
        listed = runner.invoke(app, ["keys", "list", *common])
        rotated = runner.invoke(app, ["keys", "rotate-webhook-secret", "shop-app", *common])
        revoked = runner.invoke(app, ["keys", "revoke", "shop-app", *common])
        unknown = runner.invoke(app, ["keys", "revoke", "nobody", *common])
        assert token is not None, created.output
        after = httpx.get(
            f"{registry.url}/v1/whoami", headers={"Authorization": f"Bearer {token[1]}"}
        )

    assert created.exit_code == 0, created.output
    assert "owner:          shop" in created.output
    assert listed.exit_code == 0 and "shop-app" in listed.output and "client" in listed.output
    # The registry of this stack keeps no job store, so there is no secret to rotate.
    assert rotated.exit_code == 1 and "MODELBUS_JOBS_DATABASE_URL" in rotated.output
    assert revoked.exit_code == 0 and "revoked shop-app" in revoked.output
    assert unknown.exit_code == 1 and "no API key named 'nobody'" in unknown.output
    assert after.status_code == 401
