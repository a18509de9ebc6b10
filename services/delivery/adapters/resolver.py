"""Resolve a callback host once, so the policy checks the very addresses we connect to."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Protocol

from services.delivery.domain.callback_policy import IPAddress


class ResolutionFailed(Exception):
    """The host has no address right now; DNS trouble may pass, so the attempt is retried."""


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo: /etc/hosts, then DNS)."""

    def __init__(self, *, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout):
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except TimeoutError:
            raise ResolutionFailed(f"resolving {host} took over {self._timeout:g}s") from None
        except OSError as error:
            raise ResolutionFailed(f"cannot resolve {host}: {error}") from None
        addresses: list[IPAddress] = []
        for family, *_rest, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = ipaddress.ip_address(str(sockaddr[0]))
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ResolutionFailed(f"{host} has no IPv4 or IPv6 address")
        return addresses
