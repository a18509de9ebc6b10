"""A small typed HTTP client of the registry, for the CLI, the demo and other services."""

from __future__ import annotations

import json
from typing import Any

import httpx


class RegistryCallFailed(Exception):
    """The registry refused a call; carries its status and the error body's message."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message


class RegistryClient:
    """Calls the registry's /v1 API with one API key."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            try:
                error = response.json()["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", response.text
            raise RegistryCallFailed(response.status_code, code, message)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def create_api_key(self, name: str, role: str) -> str:
        return str(self.issue_api_key(name, role)["key"])

    def issue_api_key(
        self,
        name: str,
        role: str,
        *,
        owner: str | None = None,
        ttl_seconds: int | None = None,
    ) -> dict[str, Any]:
        """A new key: its token and webhook secret are in the answer, shown only this once."""
        body: dict[str, Any] = {"name": name, "role": role}
        if owner is not None:
            body["owner"] = owner
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        return dict(self._call("POST", "/v1/api-keys", json=body))

    def api_keys(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/api-keys"))

    def revoke_api_key(self, name: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/v1/api-keys/{name}"))

    def rotate_webhook_secret(
        self, name: str, *, overlap_seconds: float | None = None
    ) -> dict[str, Any]:
        """A new webhook secret for key `name`; the old one signs too until the overlap ends."""
        params = {"overlap_seconds": overlap_seconds} if overlap_seconds is not None else {}
        return dict(self._call("POST", f"/v1/api-keys/{name}/webhook-secret", params=params))

    def create_model(self, name: str, task: str, **fields: Any) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/models", json={"name": name, "task": task} | fields))

    def model(self, name: str) -> dict[str, Any]:
        """A registered model: task, description, policy and routing options."""
        return dict(self._call("GET", f"/v1/models/{name}"))

    def models(self, *, page_size: int = 500) -> list[dict[str, Any]]:
        """Every registered model, fetched page by page."""
        found: list[dict[str, Any]] = []
        while True:
            params = {"limit": page_size, "offset": len(found)}
            page = list(self._call("GET", "/v1/models", params=params))
            found.extend(page)
            if len(page) < page_size:
                return found

    def update_model(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change a model's description, routing options or policy (PATCH)."""
        return dict(self._call("PATCH", f"/v1/models/{name}", json=fields))

    def whoami(self) -> dict[str, Any]:
        """The name and role of this client's API key."""
        return dict(self._call("GET", "/v1/whoami"))

    def register_version(
        self, model: str, *, artifact: bytes, dataset: bytes, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        files = {
            "artifact": ("model.skops", artifact, "application/octet-stream"),
            "dataset": ("train.csv", dataset, "text/csv"),
        }
        data = {"metadata": json.dumps(metadata)}
        return dict(self._call("POST", f"/v1/models/{model}/versions", files=files, data=data))

    def version(self, model: str, version: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/models/{model}/versions/{version}"))

    def artifact(self, model: str, version: int) -> bytes:
        return bytes(self._call("GET", f"/v1/models/{model}/versions/{version}/artifact"))

    def register_dataset(
        self, content: bytes, *, model: str | None = None, description: str = ""
    ) -> dict[str, Any]:
        """Store a CSV snapshot (publisher role); the answer names it by its SHA-256, and
        sending the same bytes again answers the stored one."""
        files = {"content": ("dataset.csv", content, "text/csv")}
        data = {"description": description} | ({"model": model} if model is not None else {})
        return dict(self._call("POST", "/v1/datasets", files=files, data=data))

    def datasets(self, *, model: str | None = None) -> list[dict[str, Any]]:
        """Stored snapshots, newest first (the first page), optionally those of one model."""
        params = {"model": model} if model is not None else {}
        return list(self._call("GET", "/v1/datasets", params=params))

    def dataset_content(self, sha256: str) -> bytes:
        return bytes(self._call("GET", f"/v1/datasets/{sha256}/content"))

    def decide(self, model: str, version: int, decision: str, reason: str) -> dict[str, Any]:
        body = {"decision": decision, "reason": reason}
        path = f"/v1/models/{model}/versions/{version}/approvals"
        return dict(self._call("POST", path, json=body))

    def promote(self, model: str, version: int, reason: str) -> dict[str, Any]:
        body = {"version": version, "reason": reason}
        return dict(self._call("POST", f"/v1/models/{model}/deployment/production", json=body))

    def start_canary(self, model: str, version: int, weight: float, reason: str) -> dict[str, Any]:
        body = {"version": version, "weight": weight, "reason": reason}
        return dict(self._call("POST", f"/v1/models/{model}/deployment/canary", json=body))

    def start_shadow(self, model: str, version: int, reason: str) -> dict[str, Any]:
        body = {"version": version, "reason": reason}
        return dict(self._call("POST", f"/v1/models/{model}/deployment/shadow", json=body))

    def rollback(self, model: str, reason: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/models/{model}/rollback", json={"reason": reason}))

    def deployment(self, model: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/models/{model}/deployment"))

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/audit", params=filters))
