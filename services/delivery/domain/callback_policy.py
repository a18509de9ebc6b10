"""Which callback URLs the delivery service may call: a guard against SSRF.

A caller chooses the callback URL, so without a guard any caller could make the platform
send requests into its own network (cloud metadata at 169.254.169.254, databases on
10.x, admin ports on localhost). A URL is accepted only with an http(s) scheme, no
credentials, and a host whose addresses are all publicly routable, unless the operator
allowlisted the host name or the address range. The check runs on the resolved
addresses, and the sender connects only to the addresses that passed (see
`adapters.http_sender`), so DNS cannot swap in another address after the check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = {"http": 80, "https": 443}
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_HOST_PATTERN = re.compile(rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$")


class RefusedCallback(Exception):
    """The callback URL may not be called; a final verdict, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CallbackTarget:
    """A callback URL split into what the policy checks and the sender connects to."""

    url: str
    scheme: str
    host: str
    """Lower-case host name or IP literal (IPv6 without brackets)."""
    port: int

    @property
    def literal_address(self) -> IPAddress | None:
        """The host as an IP address when the URL names one, else None."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_callback_url(url: str) -> CallbackTarget:
    """Split a callback URL, refusing schemes and forms the sender will not call."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise RefusedCallback(f"callback URL is malformed: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise RefusedCallback(f"callback URL scheme {scheme or '(none)'!r} is not http or https")
    if parts.username is not None or parts.password is not None:
        raise RefusedCallback("callback URL must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedCallback("callback URL has no host")
    if not host.isascii():
        raise RefusedCallback("callback URL host must be ASCII (use the punycode form)")
    return CallbackTarget(
        url=url.strip(), scheme=scheme, host=host, port=port or ALLOWED_SCHEMES[scheme]
    )


@dataclass(frozen=True)
class Allowlist:
    """Hosts and address ranges an operator trusts despite the private-address rule."""

    hosts: frozenset[str] = frozenset()
    """Exact host names, or `*.example.com` for any subdomain of example.com."""
    networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Entries are host names, IP addresses or CIDR ranges; ValueError names a bad one."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not _HOST_PATTERN.match(entry):
                raise ValueError(f"allowlist entry {raw!r} is neither a host name nor a CIDR")
            hosts.add(entry)
        return cls(hosts=frozenset(hosts), networks=tuple(networks))

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if host in self.hosts:
            return True
        return any(
            pattern.startswith("*.") and host.endswith(pattern[1:]) for pattern in self.hosts
        )

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.networks
        )


_FORBIDDEN_KINDS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4 or NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook may not go to `address`, or None when it is publicly routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            if problem is not None:
                return f"{problem} (embedded in {address})"
            # A mapped or NAT64 address *is* its IPv4 address; 6to4 still has its own range.
            if address.ipv4_mapped is not None or address in NAT64_PREFIX:
                return None
        if address.is_site_local:
            return f"{address} is a site-local address"
    for attribute, kind in _FORBIDDEN_KINDS:
        if getattr(address, attribute):
            return f"{address} is a {kind} address"
    if not address.is_global:
        return f"{address} is not a globally routable address"
    return None


def permitted_addresses(
    target: CallbackTarget, addresses: Sequence[IPAddress], allowlist: Allowlist
) -> list[IPAddress]:
    """The resolved addresses the webhook may be sent to; RefusedCallback when none.

    Addresses that fail the check are dropped rather than refusing the whole URL: the
    sender connects only to the ones returned, so a host resolving to a public and a
    private address gets its webhook on the public one, never on the private one.
    """
    if not addresses:
        raise RefusedCallback(f"{target.host} resolved to no address")
    if allowlist.allows_host(target.host):
        return list(addresses)
    permitted: list[IPAddress] = []
    problems: list[str] = []
    for address in addresses:
        problem = None if allowlist.allows_address(address) else address_problem(address)
        if problem is None:
            permitted.append(address)
        else:
            problems.append(problem)
    if not permitted:
        raise RefusedCallback(
            f"callback host {target.host} is not allowed: {problems[0]} "
            "(allowlist it in MODELBUS_WEBHOOK_ALLOWLIST if it is meant to receive webhooks)"
        )
    return permitted
