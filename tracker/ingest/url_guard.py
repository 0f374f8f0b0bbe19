"""Fetch a config URL without letting it reach what a URL should not: the guards and the fetch.

A config URL comes from a notification, so it is the sender's choice of where the tracker connects.
Only https to public addresses, then: a name is resolved first and the connection goes to exactly the
addresses that were checked (`GuardedResolver`), so a name that resolves to a public address for the
check and to a private one for the connection (DNS rebinding) gets nowhere. Redirects are followed by
hand, to the same origin only; the body is capped and the whole fetch has a deadline.

A URL that starts with a prefix of `TRACKER_CONFIG_URL_ALLOW` skips the https and address checks (tests,
self-hosted setups), not the size and time limits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from tracker.domain.config import without_query

MAX_BYTES = 5 * 1024 * 1024
"""Largest config body taken, after decompression; a larger one is refused even without a Content-Length."""
TIMEOUT = 10.0
"""Seconds for the whole fetch, redirects included."""
MAX_REDIRECTS = 3
MAX_DEPTH = 200
"""Deeper configs are refused: orjson will not encode one much deeper, and no real config comes near."""
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

HostResolver = Callable[[str], Awaitable[list[str]]]
"""A host name to its IP addresses, as strings; `resolve_host` by default, a table in tests."""


class ConfigFetchError(Exception):
    """The fetch failed in a way that may pass (a 5xx, a timeout, a refused connection): try again later."""


class ConfigRefusedError(ConfigFetchError):
    """The URL or its answer breaks a guard: trying again would give the same answer."""


def is_public_address(address: str) -> bool:
    """Whether `address` is a global unicast address: not private, loopback, link-local, multicast, reserved."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 form of an IPv4 address reaches that IPv4 address: judge the one it embeds.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            return is_public_address(str(embedded))
    special = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
    return ip.is_global and not special and not ip.is_unspecified


def is_allowed(url: URL, allow: Sequence[str]) -> bool:
    """Whether `url` starts with one of the `allow` prefixes, compared as URLs, not as text.

    As text, a prefix `http://127.0.0.1:8080` would let `http://127.0.0.1:8080@evil.example/` through.
    """
    for prefix in allow:
        try:
            allowed = URL(prefix, encoded=True)
        except ValueError:
            continue
        same_origin = (url.scheme, url.host, url.port) == (allowed.scheme, allowed.host, allowed.port)
        if same_origin and allowed.host and _under(url.raw_path, allowed.raw_path or "/"):
            return True
    return False


def _under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it, whole segments only, and could climb out by no server's reading.

    The server, not us, would resolve `/configs/../admin`, so a path that any server may read as climbing is
    never "under" anything: one with a dot segment once decoded, however many times it was percent-encoded
    (`%2e%2e`, `%252e%252e`), with a path parameter after it (`..;x`, read as `..` by Java servers), or with
    a backslash (`\\`, `%5C`), which Windows servers read as `/`.
    """
    if not _plain(path):
        return False
    return path == prefix or path.startswith(prefix if prefix.endswith("/") else f"{prefix}/")


def _plain(path: str) -> bool:
    """Whether `path`, decoded until it no longer changes, holds no backslash, control character or dot segment."""
    decoded, previous = path, None
    while decoded != previous:
        previous, decoded = decoded, unquote(decoded)
    if "\\" in decoded or any(ord(char) < 0x20 or ord(char) == 0x7F for char in decoded):
        return False
    segments = (segment.split(";", 1)[0].rstrip(" ") for segment in decoded.split("/"))
    return not any(segment and set(segment) == {"."} for segment in segments)


def check_url(url: str, allow: Sequence[str]) -> tuple[URL, bool]:
    """Parse `url` and apply the policy; return it and whether an allow prefix exempts it from the guards.

    A host that is a name is checked later, by the resolver, where its addresses are known.
    """
    shown = without_query(url)
    try:
        parsed = URL(url, encoded=True)  # as given: a pre-signed URL's signature covers its exact encoding
    except ValueError:
        msg = f"{shown} is not a valid URL"
        raise ConfigRefusedError(msg) from None
    if not parsed.absolute or not parsed.host:
        msg = f"{shown} is not an absolute URL"
        raise ConfigRefusedError(msg)
    if parsed.raw_user is not None or parsed.raw_password is not None:
        msg = f"{shown}: a URL with user info is refused"
        raise ConfigRefusedError(msg)
    if is_allowed(parsed, allow):
        return parsed, True
    if parsed.scheme != "https":
        msg = f"{shown}: only https URLs are fetched"
        raise ConfigRefusedError(msg)
    host = parsed.host
    if _is_ip_literal(host) and not is_public_address(host):
        msg = f"{shown}: {host} is not a public address"
        raise ConfigRefusedError(msg)
    return parsed, False


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve_host(host: str) -> list[str]:
    """The addresses `host` resolves to, with the event loop's getaddrinfo, in its order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedResolver(AbstractResolver):
    """Resolve for aiohttp, returning only the addresses that pass the check, so it connects to those only."""

    def __init__(self, resolve: HostResolver = resolve_host, *, enforce: bool = True) -> None:
        self._resolve = resolve
        self._enforce = enforce

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        try:
            addresses = await self._resolve(host)
        except OSError as exc:
            msg = f"cannot resolve {host}: {exc.strerror or type(exc).__name__}"
            raise ConfigFetchError(msg) from None
        results: list[ResolveResult] = []
        refused: list[str] = []
        for address in addresses:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                refused.append(address)
                continue
            if self._enforce and not is_public_address(address):
                refused.append(address)
                continue
            ip_family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
            if family in (socket.AF_UNSPEC, ip_family):
                results.append(
                    ResolveResult(
                        hostname=host,
                        host=address,
                        port=port,
                        family=ip_family,
                        proto=0,
                        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                    )
                )
        if refused or not results:  # one private address among public ones is as suspect as all
            found = ", ".join(refused) or "no address"
            msg = f"{host} resolves to an address that is not public ({found})"
            raise ConfigRefusedError(msg)
        return results

    async def close(self) -> None:
        """Nothing to release: resolving borrows the event loop's getaddrinfo."""


class ConfigFetcher:
    """Fetch a config: a JSON object at an https URL on a public address, within the limits."""

    def __init__(
        self,
        allow: Sequence[str] = (),
        *,
        timeout: float = TIMEOUT,
        max_bytes: int = MAX_BYTES,
        resolve: HostResolver = resolve_host,
    ) -> None:
        self.allow = tuple(allow)
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._resolve = resolve

    async def fetch(self, url: str) -> dict[str, Any]:
        """Return the JSON object at `url`; ConfigRefusedError or ConfigFetchError, their messages without a query."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(url)
        except TimeoutError:
            msg = f"timeout after {self._timeout:g} s"
            raise ConfigFetchError(msg) from None
        except aiohttp.InvalidURL:  # say, a host in a legacy numeric form (`127.1`), which aiohttp refuses too
            msg = f"{without_query(url)} is not a valid URL"
            raise ConfigRefusedError(msg) from None
        except aiohttp.ClientError as exc:
            raise ConfigFetchError(_describe(exc)) from None

    async def _fetch(self, url: str) -> dict[str, Any]:
        first, _ = check_url(url, self.allow)
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            target, allowed = check_url(current, self.allow)
            if _origin(target) != _origin(first):
                msg = f"redirect from {without_query(url)} to another host: {without_query(current)}"
                raise ConfigRefusedError(msg)
            location = await self._get(target, allowed)
            if isinstance(location, dict):
                return location
            try:
                current = str(target.join(URL(location, encoded=True)))
            except ValueError:
                msg = f"{without_query(url)} redirects to a Location that is not a URL"
                raise ConfigRefusedError(msg) from None
        msg = f"{without_query(url)}: more than {MAX_REDIRECTS} redirects"
        raise ConfigRefusedError(msg)

    async def _get(self, url: URL, allowed: bool) -> dict[str, Any] | str:
        """The JSON object at `url`, or where it redirects to."""
        # A session per request: its resolver enforces the guard unless this very URL is allowed.
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self._resolve, enforce=not allowed), use_dns_cache=False
        )
        async with (
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,  # no proxy from the environment
            session.get(url, allow_redirects=False, headers={"Accept": "application/json"}) as response,
        ):
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    msg = f"HTTP {response.status} without a Location"
                    raise ConfigFetchError(msg)
                return location
            if response.status != 200:
                msg = f"HTTP {response.status}"
                raise ConfigFetchError(msg)
            if response.content_length is not None and response.content_length > self._max_bytes:
                raise ConfigRefusedError(self._too_large())
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > self._max_bytes:
                    raise ConfigRefusedError(self._too_large())
        try:
            content = orjson.loads(body)
        except orjson.JSONDecodeError:
            msg = "the body is not JSON"
            raise ConfigRefusedError(msg) from None
        if not isinstance(content, dict):
            msg = f"the body is JSON but not an object (a {type(content).__name__})"
            raise ConfigRefusedError(msg)
        if not content:
            msg = "the body is an empty JSON object"
            raise ConfigRefusedError(msg)
        if _depth(content) > MAX_DEPTH:
            msg = f"the body nests deeper than {MAX_DEPTH} levels"
            raise ConfigRefusedError(msg)
        if b"\\u0000" in body and _has_nul(content):  # JSON carries a NUL only as that escape
            msg = "the body contains a NUL character (\\u0000), which PostgreSQL's jsonb cannot store"
            raise ConfigRefusedError(msg)
        return content

    def _too_large(self) -> str:
        return f"the body is larger than {self._max_bytes} bytes"


def _depth(value: Any) -> int:
    """How deep arrays and objects nest, without recursion (a hostile body may nest thousands deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.host, url.port


def _describe(exc: aiohttp.ClientError) -> str:
    """Say what failed without the URL: aiohttp's messages name the whole URL, query and all."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port}: {reason}"
    if isinstance(exc, aiohttp.ClientConnectionError):
        return f"connection failed: {type(exc).__name__}"
    return f"request failed: {type(exc).__name__}"
