"""POST webhooks with aiohttp, connecting only to the addresses the callback policy approved.

DNS rebinding defence: the host is resolved once, the policy checks those addresses, and
the approved ones are *pinned* for the request in a context variable. The client never
resolves a name on its own: its resolver answers only the pinned host and port, with the
pinned addresses, and its socket factory creates a socket only for a pinned address and
port (aiohttp does not ask the resolver about IP literals; the factory sees those too).
A URL whose host or port, as aiohttp parses it, is not the checked one is refused before
anything is opened. The URL keeps its host name, so TLS still sends SNI for and verifies
the certificate of the host name, and `Host` is the caller's. Proxies from the
environment are ignored (`trust_env=False`): a proxy would make the connection, not us.
Cookies are never kept, so one receiver cannot plant state that travels to the next call.
Connections are kept alive and reused, only for the same host and port (whose address
passed the check when the connection was opened).

Why aiohttp and not httpx: at a thousand webhooks a second httpx (with httpcore 1.0) cost
about 1 ms of CPU per webhook on loopback, most of it in its connection pool and in an
import of the absent `sniffio` on every lock; aiohttp costs about a tenth of that.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import ipaddress
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from services.delivery.domain.attempts import AttemptResult
from services.delivery.domain.callback_policy import CallbackTarget, IPAddress
from shared.storable_text import storable_text

USER_AGENT = "modelbus-delivery/1.0 (+https://www.standardwebhooks.com)"
ERROR_EXCERPT_BYTES = 300
SUCCESS_BODY_READ_BYTES = 64 * 1024
"""A 2xx body is read (and dropped) up to this size so its connection can be reused;
a larger one closes the connection instead of being read to the end."""
KEEPALIVE_SECONDS = 30.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
"""One `getaddrinfo` entry, as aiohttp hands it to its socket factory."""


@dataclass(frozen=True)
class Pin:
    """Where the current request may connect: its checked host, port and addresses."""

    host: str
    port: int
    addresses: tuple[str, ...]


_current_pin: contextvars.ContextVar[Pin | None] = contextvars.ContextVar(
    "webhook_pin", default=None
)


class RefusedConnection(OSError):
    """A connection to somewhere the callback policy did not check; never attempted."""


class PinnedNetwork:
    """The only way the client reaches the network: pinned addresses, counted sockets."""

    def __init__(self) -> None:
        self.connect_attempts = 0
        """Sockets we tried to open: a refused callback must leave this untouched."""
        self.refused = 0
        """Connections refused because the host or port was not the checked one."""
        self.resolver = _PinnedResolver(self)

    def refuse(self, host: str, port: int) -> RefusedConnection:
        self.refused += 1
        return RefusedConnection(
            errno.EPERM,
            f"refused to connect to {host}:{port}: not the callback host that was checked",
        )

    def current_pin(self, host: str, port: int) -> Pin:
        """The pin of the running request if it is for `host`:`port`; refused otherwise."""
        pin = _current_pin.get()
        if pin is None or host.lower().rstrip(".") != pin.host or port != pin.port:
            raise self.refuse(host, port)
        return pin

    def open_socket(self, addr_info: AddrInfo) -> socket.socket:
        """aiohttp's socket factory: a socket only towards a pinned address and port."""
        family, kind, proto, _name, sockaddr = addr_info
        host, port = str(sockaddr[0]), int(sockaddr[1])
        pin = _current_pin.get()
        if pin is None or port != pin.port or _normalised(host) not in pin.addresses:
            raise self.refuse(host, port)
        self.connect_attempts += 1
        return socket.socket(family=family, type=kind, proto=proto)


class _PinnedResolver(AbstractResolver):
    """Answers only for the pinned host and port, with the pinned addresses; no DNS."""

    def __init__(self, network: PinnedNetwork) -> None:
        self._network = network

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pin = self._network.current_pin(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in pin.addresses
        ]

    async def close(self) -> None:
        return None


def _normalised(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


class WebhookSender:
    """One shared aiohttp session: bounded pool, deadlines, redirects never followed.

    The session is created on first use, inside the running event loop.
    """

    def __init__(
        self,
        *,
        request_timeout_seconds: float,
        connect_timeout_seconds: float,
        max_connections: int,
        network: PinnedNetwork | None = None,
    ) -> None:
        self.network = network or PinnedNetwork()
        self._deadline = request_timeout_seconds
        self._connect_timeout = connect_timeout_seconds
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_SECONDS,
                use_dns_cache=False,
                resolver=self.network.resolver,
                socket_factory=self.network.open_socket,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._connect_timeout, sock_read=None
                ),
                headers={"User-Agent": USER_AGENT},
                skip_auto_headers=("Accept-Encoding",),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        target: CallbackTarget,
        addresses: Sequence[IPAddress],
        *,
        body: bytes,
        headers: Mapping[str, str],
    ) -> AttemptResult:
        """POST `body` to the target over a pinned address; never raises for network trouble."""
        started = time.perf_counter()

        def elapsed_ms() -> float:
            return (time.perf_counter() - started) * 1000

        url = URL(target.url)
        host, port = url.raw_host or "", url.port
        if host.lower().rstrip(".") != target.host or port != target.port:
            refusal = self.network.refuse(host, port or 0)
            return AttemptResult(None, _describe(refusal), elapsed_ms())
        pin = Pin(target.host, target.port, tuple(str(address) for address in addresses))
        token = _current_pin.set(pin)
        try:
            async with (
                asyncio.timeout(self._deadline),
                self._client().post(
                    url,
                    data=body,
                    headers={"Content-Type": "application/json", **headers},
                    allow_redirects=False,
                ) as response,
            ):
                if 200 <= response.status < 300:
                    await _read_up_to(response, SUCCESS_BODY_READ_BYTES)
                    excerpt = ""
                else:
                    excerpt = _text(await _read_up_to(response, ERROR_EXCERPT_BYTES))
        except TimeoutError as error:
            return AttemptResult(
                None,
                f"timed out after {elapsed_ms() / 1000:.1f}s ({_describe(error)})",
                elapsed_ms(),
            )
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return AttemptResult(None, _describe(error), elapsed_ms())
        finally:
            _current_pin.reset(token)
        return AttemptResult(
            status_code=response.status,
            error=_status_error(response, excerpt),
            duration_ms=elapsed_ms(),
            retry_after_seconds=_retry_after(response.headers.get("Retry-After")),
        )


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body; a body read to its end keeps the connection."""
    collected = bytearray()
    while len(collected) < limit:
        chunk = await response.content.read(limit - len(collected))
        if not chunk:
            break
        collected += chunk
    return bytes(collected)


def _text(excerpt: bytes) -> str:
    return storable_text(excerpt, max_chars=ERROR_EXCERPT_BYTES)


def _status_error(response: aiohttp.ClientResponse, excerpt: str) -> str | None:
    status = response.status
    if 200 <= status < 300:
        return None
    if status in REDIRECT_STATUSES and "Location" in response.headers:
        location = response.headers.get("Location", "?")
        return f"HTTP {status}: redirect to {location} not followed"
    reason = response.reason or ""
    detail = f": {excerpt}" if excerpt else ""
    return f"HTTP {status} {reason}".rstrip() + detail


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds; the HTTP-date form is rare for webhooks and ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _describe(error: BaseException) -> str:
    detail = str(error) or error.__class__.__doc__ or ""
    return f"{type(error).__name__}: {detail.strip().splitlines()[0] if detail else 'no detail'}"
