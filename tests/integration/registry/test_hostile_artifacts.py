"""Hostile model files are refused with 422, store nothing and leave the registry serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.sample_models import iris_classifier
from services.registry.bootstrap import artifact_inspector
from tests.integration.registry.conftest import Registry
from tests.support.hostile_models import (
    call_on_load,
    npz_unpickling_attack,
    svc_with_overstated_support_count,
    tree_with_child_outside,
    with_extra_member,
    zip_bomb,
)

pytestmark = [pytest.mark.kafka]
IRIS = iris_classifier()


def _stored_files(registry: Registry) -> list[Path]:
    return sorted(path for path in registry.settings.artifact_dir.rglob("*") if path.is_file())


HOSTILE: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "npz-unpickling": (
        lambda folder: npz_unpickling_attack(folder, folder / "code-ran"),
        "untrusted types: numpy.lib._npyio_impl.BagObj, numpy.lib._npyio_impl.NpzFile",
    ),
    "os-system-reduce": (
        lambda folder: call_on_load("os", "system", f"touch {folder / 'code-ran'}"),
        "untrusted types: os.system",
    ),
    "eval-reduce": (
        lambda folder: call_on_load("builtins", "eval", "__import__('os').getpid()"),
        "untrusted types: builtins.eval",
    ),
    "extra-member": (
        lambda _folder: with_extra_member(IRIS.artifact, "stash.npy"),
        "does not reference: 'stash.npy'",
    ),
    "zip-bomb": (
        lambda _folder: zip_bomb(IRIS.artifact, 64 * 1024 * 1024),
        "bytes uncompressed; at most 33554432 are accepted",
    ),
    "svc-support-counts-past-its-vectors": (
        lambda _folder: svc_with_overstated_support_count(),
        "a support vector model's arrays do not fit together",
    ),
    "tree-outside-nodes": (
        lambda _folder: tree_with_child_outside(),
        "points at a child outside the tree",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_artifact_is_refused_and_nothing_is_stored(
    registry: Registry, tmp_path: Path, case: str
) -> None:
    build, reason = HOSTILE[case]
    registry.create_model("iris")
    before = _stored_files(registry)
    hostile = build(tmp_path)
    assert len(hostile) < registry.settings.max_upload_bytes

    response = registry.register("iris", hostile, IRIS.dataset)

    assert response.status_code == 422, response.text
    assert reason in response.text
    assert not (tmp_path / "code-ran").exists()
    assert _stored_files(registry) == before
    assert registry.call("reader", "GET", "/v1/models/iris/versions").json() == []
    assert registry.client.get("/healthz").status_code == 200
    healthy = registry.register("iris", IRIS.artifact, IRIS.dataset)
    assert healthy.status_code == 201, healthy.text


def test_inspection_that_exceeds_its_memory_is_refused(registry: Registry) -> None:
    """Within the zip limits but over the inspection's memory: the child dies, not the registry."""
    registry.create_model("iris")
    settings = registry.settings.model_copy(update={"inspect_memory_bytes": 64 * 1024 * 1024})
    container = registry.client.app.state.container  # type: ignore[attr-defined]
    container.inspect_artifact = artifact_inspector(settings)
    hostile = zip_bomb(IRIS.artifact, 30 * 1024 * 1024)

    response = registry.register("iris", hostile, IRIS.dataset)

    assert response.status_code == 422, response.text
    assert "bytes of memory" in response.text
    assert registry.client.get("/healthz").status_code == 200
