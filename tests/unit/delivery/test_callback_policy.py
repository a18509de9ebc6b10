"""The SSRF guard: schemes, private and special addresses (v4, v6, embedded v4), allowlist."""

from __future__ import annotations

import ipaddress

import pytest

from services.delivery.domain.callback_policy import (
    Allowlist,
    RefusedCallback,
    address_problem,
    parse_callback_url,
    permitted_addresses,
)

NO_ALLOWLIST = Allowlist()


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port"),
    [
        ("https://hooks.example.com/modelbus", "https", "hooks.example.com", 443),
        ("http://hooks.example.com/x?y=1", "http", "hooks.example.com", 80),
        ("HTTPS://Hooks.Example.COM:8443/", "https", "hooks.example.com", 8443),
        ("http://[2606:4700::1111]:8080/", "http", "2606:4700::1111", 8080),
        ("http://hooks.example.com./", "http", "hooks.example.com", 80),
    ],
)
def test_http_and_https_urls_are_parsed(url: str, scheme: str, host: str, port: int) -> None:
    target = parse_callback_url(url)
    assert (target.scheme, target.host, target.port) == (scheme, host, port)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/file", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com:70/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("example.com/hook", "scheme"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://127.0.0.1\\@example.com/", "credentials"),
        ("http:///path-only", "no host"),
        ("http://example.com:99999/", "malformed"),
        ("http://bücher.example/", "ASCII"),
    ],
)
def test_other_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(RefusedCallback) as refused:
        parse_callback_url(url)
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("100.64.0.1", "not a globally routable"),
        ("192.0.2.10", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.1.2.3", "private"),
        ("2002:a00:1::1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
    ],
)
def test_non_public_addresses_are_named_with_their_kind(address: str, kind: str) -> None:
    problem = address_problem(ip(address))
    assert problem is not None and kind in problem


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ip(address)) is None


def test_embedded_ipv4_is_named_in_the_reason() -> None:
    problem = address_problem(ip("::ffff:127.0.0.1"))
    assert problem is not None and "embedded in ::ffff:7f00:1" in problem


def test_only_public_addresses_of_a_mixed_answer_are_used() -> None:
    target = parse_callback_url("https://hooks.example.com/")
    addresses = [ip("10.0.0.7"), ip("93.184.215.14"), ip("::1"), ip("2606:2800:21f::1")]
    assert permitted_addresses(target, addresses, NO_ALLOWLIST) == [
        ip("93.184.215.14"),
        ip("2606:2800:21f::1"),
    ]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data/", "http://10.1.1.1/"],
)
def test_a_host_with_only_forbidden_addresses_is_refused(url: str) -> None:
    target = parse_callback_url(url)
    assert target.literal_address is not None
    with pytest.raises(RefusedCallback) as refused:
        permitted_addresses(target, [target.literal_address], NO_ALLOWLIST)
    assert "MODELBUS_WEBHOOK_ALLOWLIST" in refused.value.reason


def test_no_address_is_refused() -> None:
    with pytest.raises(RefusedCallback):
        permitted_addresses(parse_callback_url("http://x.example/"), [], NO_ALLOWLIST)


def test_allowlisted_addresses_and_ranges_pass() -> None:
    allowlist = Allowlist.parse(["127.0.0.1", "10.20.0.0/16", "fd00::/8"])
    local = parse_callback_url("http://127.0.0.1:9000/hook")
    assert permitted_addresses(local, [ip("127.0.0.1")], allowlist) == [ip("127.0.0.1")]
    assert allowlist.allows_address(ip("::ffff:127.0.0.1"))
    assert allowlist.allows_address(ip("10.20.255.1"))
    assert not allowlist.allows_address(ip("10.21.0.1"))
    assert not allowlist.allows_address(ip("127.0.0.2"))
    assert allowlist.allows_address(ip("fd00::5"))
    internal = parse_callback_url("http://svc.internal/")
    assert permitted_addresses(internal, [ip("10.20.3.4"), ip("10.99.0.1")], allowlist) == [
        ip("10.20.3.4")
    ]


def test_allowlisted_hosts_may_resolve_anywhere() -> None:
    allowlist = Allowlist.parse(["receiver.local", "*.corp.example"])
    for url in ("http://receiver.local/", "http://a.b.corp.example/", "http://RECEIVER.local./"):
        target = parse_callback_url(url)
        assert permitted_addresses(target, [ip("10.0.0.5")], allowlist) == [ip("10.0.0.5")]
    for url in ("http://corp.example/", "http://evilcorp.example/", "http://receiver.local.evil/"):
        with pytest.raises(RefusedCallback):
            permitted_addresses(parse_callback_url(url), [ip("10.0.0.5")], allowlist)


@pytest.mark.parametrize("entry", ["http://example.com", "a b", "10.0.0.0/33", "-bad.example"])
def test_malformed_allowlist_entries_are_rejected(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist entry"):
        Allowlist.parse([entry])
