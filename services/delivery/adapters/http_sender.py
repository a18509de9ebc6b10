"""POST webhooks with httpx, connecting only to the addresses the callback policy approved.

DNS rebinding defence: the host is resolved once, the policy checks those addresses, and
the approved ones are *pinned* for the request in a context variable. The transport's
network backend opens TCP connections only to pinned addresses of the pinned host and
port; anything else (another host after a redirect or a parser disagreement, a second DNS
answer) is refused before a socket is opened. The URL keeps its host name, so TLS still
sends SNI for and verifies the certificate of the host name, and `Host` is the caller's.
Proxies from the environment are ignored (`trust_env=False`): a proxy would make the
connection, not us.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from services.delivery.domain.attempts import AttemptResult
from services.delivery.domain.callback_policy import CallbackTarget, IPAddress

USER_AGENT = "modelbus-delivery/1.0 (+https://www.standardwebhooks.com)"
ERROR_EXCERPT_BYTES = 300


@dataclass(frozen=True)
class Pin:
    """Where the current request may connect: its checked host, port and addresses."""

    host: str
    port: int
    addresses: tuple[str, ...]


_current_pin: contextvars.ContextVar[Pin | None] = contextvars.ContextVar(
    "webhook_pin", default=None
)


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to the addresses pinned for the running request."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self.connect_attempts = 0
        """Sockets we tried to open: a refused callback must leave this untouched."""
        self.refused = 0
        """Connections refused because the host or port was not the checked one."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _current_pin.get()
        if pin is None or host.lower().rstrip(".") != pin.host or port != pin.port:
            self.refused += 1
            raise httpcore.ConnectError(
                f"refused to connect to {host}:{port}: not the callback host that was checked"
            )
        last_error: Exception | None = None
        for address in pin.addresses:
            self.connect_attempts += 1
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None  # a pin always holds at least one address
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool built on the pinned backend.

    httpx has no public hook for the network backend, so the pool is replaced right after
    construction; the integration tests prove the pin holds, so an httpx upgrade that
    changed this would fail them rather than silently lose the defence.
    """

    def __init__(self, backend: PinnedNetworkBackend, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False, retries=0)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("this httpx version builds its pool differently; cannot pin")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )


class WebhookSender:
    """One shared httpx client: bounded pool, timeouts, redirects never followed."""

    def __init__(
        self,
        *,
        request_timeout_seconds: float,
        connect_timeout_seconds: float,
        max_connections: int,
        backend: PinnedNetworkBackend | None = None,
    ) -> None:
        self.network = backend or PinnedNetworkBackend()
        self._deadline = request_timeout_seconds
        self._client = httpx.AsyncClient(
            transport=PinnedTransport(
                self.network,
                limits=httpx.Limits(
                    max_connections=max_connections,
                    max_keepalive_connections=min(max_connections, 32),
                    keepalive_expiry=30.0,
                ),
            ),
            timeout=httpx.Timeout(request_timeout_seconds, connect=connect_timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(
        self,
        target: CallbackTarget,
        addresses: Sequence[IPAddress],
        *,
        body: bytes,
        headers: Mapping[str, str],
    ) -> AttemptResult:
        """POST `body` to the target over a pinned address; never raises for network trouble."""
        pin = Pin(target.host, target.port, tuple(str(address) for address in addresses))
        token = _current_pin.set(pin)
        started = time.perf_counter()

        def elapsed_ms() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            async with (
                asyncio.timeout(self._deadline),
                self._client.stream(
                    "POST",
                    target.url,
                    content=body,
                    headers={"content-type": "application/json", **headers},
                ) as response,
            ):
                excerpt = await _excerpt(response)
        except (TimeoutError, httpx.TimeoutException) as error:
            return AttemptResult(
                None,
                f"timed out after {elapsed_ms() / 1000:.1f}s ({_describe(error)})",
                elapsed_ms(),
            )
        except httpx.HTTPError as error:
            return AttemptResult(None, _describe(error), elapsed_ms())
        finally:
            _current_pin.reset(token)
        return AttemptResult(
            status_code=response.status_code,
            error=_status_error(response, excerpt),
            duration_ms=elapsed_ms(),
            retry_after_seconds=_retry_after(response.headers.get("retry-after")),
        )


async def _excerpt(response: httpx.Response) -> str:
    """The start of the body, for the error log; the rest is never read."""
    if response.is_success:
        return ""
    collected = b""
    async for chunk in response.aiter_bytes():
        collected += chunk
        if len(collected) >= ERROR_EXCERPT_BYTES:
            break
    return collected[:ERROR_EXCERPT_BYTES].decode("utf-8", errors="replace").strip()


def _status_error(response: httpx.Response, excerpt: str) -> str | None:
    if response.is_success:
        return None
    if response.is_redirect:
        location = response.headers.get("location", "?")
        return f"HTTP {response.status_code}: redirect to {location} not followed"
    reason = response.reason_phrase or ""
    detail = f": {excerpt}" if excerpt else ""
    return f"HTTP {response.status_code} {reason}".rstrip() + detail


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds; the HTTP-date form is rare for webhooks and ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _describe(error: Exception) -> str:
    detail = str(error) or error.__class__.__doc__ or ""
    return f"{type(error).__name__}: {detail.strip().splitlines()[0] if detail else 'no detail'}"
