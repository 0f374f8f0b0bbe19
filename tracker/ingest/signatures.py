"""Svix signature checks, by the Standard Webhooks library that Svix's own verifier wraps."""

from __future__ import annotations

import binascii
import ipaddress
from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

_HEADERS = ("id", "timestamp", "signature")


class SignatureError(Exception):
    """The delivery is not signed by any configured secret (or is more than 5 minutes off)."""


def delivery_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Svix sends `svix-*`; Standard Webhooks senders `webhook-*`. Either names the same three values."""
    found = {}
    for name in _HEADERS:
        value = headers.get(f"svix-{name}") or headers.get(f"webhook-{name}")
        if value:
            found[f"webhook-{name}"] = value
    return found


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_PROXY_HEADERS = frozenset({"forwarded", "via", "x-real-ip"})
"""Headers a reverse proxy adds, besides every `X-Forwarded-*` one."""


def is_local_client(remote: str | None, headers: Mapping[str, str]) -> bool:
    """Whether the client is on this host: a loopback peer, and no proxy forwarded the request.

    A reverse proxy on the same host connects from loopback for every client it forwards; a request that
    names a proxy hop is therefore never trusted as local, whoever set the header.
    """
    if not is_loopback(remote):
        return False
    return not any(
        (lowered := name.lower()) in _PROXY_HEADERS or lowered.startswith("x-forwarded-") for name in headers
    )


class SignatureVerifier:
    """Accepts a delivery signed by any of the secrets, so a secret can be rotated without downtime."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._verifiers = [Webhook(secret) for secret in secrets]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        signed = delivery_headers(headers)
        if len(signed) < len(_HEADERS):
            msg = "missing signature headers (svix-id, svix-timestamp, svix-signature)"
            raise SignatureError(msg)
        try:
            # Checked here, whatever the library does with such bytes: Svix signs text only, so no signature
            # fits, and the delivery is refused like any unsigned one (401, nothing stored).
            body.decode("utf-8")
        except UnicodeDecodeError:
            msg = "body is not UTF-8 text, which is all Svix signs"
            raise SignatureError(msg) from None
        problem = "no secret matches the signature"
        for verifier in self._verifiers:
            try:
                verifier.verify(body, signed, json_parse=False)
            except WebhookVerificationError as exc:
                problem = str(exc)
            except (ValueError, binascii.Error):  # a malformed signature list
                problem = "malformed svix-signature header"
            else:
                return
        raise SignatureError(problem)
