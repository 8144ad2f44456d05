"""API keys and request-size limits, as plain ASGI middleware (they run before any body is parsed).

Keys come from ``METALEARN_API_KEYS``; only their SHA-256 digests are kept, and a presented key is
hashed and compared with every stored digest using :func:`hmac.compare_digest`. When keys are
configured, every ``/v1/`` endpoint except ``/v1/health`` answers 401 without a valid
``Authorization: Bearer <key>`` header. The documentation (``/docs``, ``/redoc``,
``/openapi.json``) stays readable without a key.

A key may hold any Unicode text: both sides hash its UTF-8 bytes. HTTP headers arrive as bytes that
Starlette decodes as latin-1; :func:`key_bytes` recovers the bytes sent and reads them as UTF-8 (or as
latin-1 when they are not UTF-8), so a client sending the key in either encoding matches.

Every key stands for an identity (``METALEARN_API_KEYS=alice:KEY1,bob:KEY2``, admin keys in
``METALEARN_API_ADMIN_KEYS``, see :func:`metalearn.settings.parse_api_keys`): :func:`current_identity` is the
dependency that tells the routes who the caller is (:class:`metalearn.api.tenants.Identity`); without keys every
request is the ``anonymous`` identity, which sees everything.

A client address that presents more than :data:`MAX_AUTH_FAILURES` wrong keys (or malformed headers)
within :data:`AUTH_FAILURE_WINDOW` seconds gets 429 with ``Retry-After`` on every protected path until
its failures age out of the window (a request without any key is not counted). Behind a reverse proxy
every client has the proxy's address unless uvicorn trusts its forwarding headers (``--forwarded-allow-ips``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metalearn.api.tenants import ANONYMOUS_IDENTITY, Identity
from metalearn.settings import ApiKey

OPEN_PATHS = frozenset({"/v1/health"})
PROTECTED_PREFIX = "/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_AUTH_FAILURES = 10
AUTH_FAILURE_WINDOW = 60.0  # seconds
MAX_TRACKED_CLIENTS = 10_000

bearer_scheme = HTTPBearer(auto_error=False, scheme_name="APIKey",
                           description="An API key from METALEARN_API_KEYS, sent as `Authorization: Bearer <key>`.")


def key_is_valid(presented: str | None, digests: Iterable[bytes]) -> bool:
    """Whether ``presented`` hashes to one of ``digests`` (every digest is compared, in constant time)."""
    digests = tuple(digests)
    if not digests:
        return True
    if not presented:
        return False
    candidate = hashlib.sha256(key_bytes(presented)).digest()
    valid = False
    for digest in digests:
        valid |= hmac.compare_digest(candidate, digest)
    return valid


def key_bytes(presented: str) -> bytes:
    """The UTF-8 bytes of a presented key, whether it is a header value (bytes read as latin-1) or plain text."""
    try:
        raw = presented.encode("latin-1")
    except UnicodeEncodeError:  # text beyond latin-1: not from a header, already decoded
        return presented.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8").encode("utf-8")
    except UnicodeDecodeError:  # a client that sent latin-1
        return raw.decode("latin-1").encode("utf-8")


def key_of(presented: str | None, keys: Iterable[ApiKey]) -> ApiKey | None:
    """The key ``presented`` hashes to, or ``None`` (every key is compared, in constant time)."""
    if not presented:
        return None
    candidate = hashlib.sha256(key_bytes(presented)).digest()
    found = None
    for key in keys:
        if hmac.compare_digest(candidate, key.digest):
            found = key
    return found


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def auth_failure(authorization: str | None, digests: Iterable[bytes]) -> str | None:
    """Why a request with this ``Authorization`` header is refused, or ``None`` if it is allowed."""
    digests = tuple(digests)
    if not digests:
        return None
    if not authorization:
        return "missing API key: send the header 'Authorization: Bearer <key>'"
    token = bearer_token(authorization)
    if token is None:
        return "malformed Authorization header: expected 'Bearer <key>'"
    if not key_is_valid(token, digests):
        return "invalid API key"
    return None


async def _send_json(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class FailureLimiter:
    """Failed authentications per client address in a sliding window (the oldest clients forgotten first)."""

    def __init__(self, limit: int = MAX_AUTH_FAILURES, window: float = AUTH_FAILURE_WINDOW,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.limit, self.window, self.clock, self.max_clients = limit, window, clock, max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or ``None`` when it is not blocked."""
        now = self.clock()
        failures = self._recent(client, now)
        if not failures:
            self._failures.pop(client, None)
            return None
        if len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[-self.limit] + self.window - now))

    def record(self, client: str) -> None:
        now = self.clock()
        failures = self._recent(client, now)
        failures.append(now)
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class APIKeyMiddleware:
    """401 for ``/v1/`` requests without a valid key (before the body is read); 429 for a client after too many
    wrong keys (see :class:`FailureLimiter`)."""

    def __init__(self, app: ASGIApp, digests: tuple[bytes, ...], open_paths: Iterable[str] = OPEN_PATHS,
                 limiter: FailureLimiter | None = None) -> None:
        self.app = app
        self.digests = tuple(digests)
        self.open_paths = frozenset(open_paths)
        self.limiter = limiter or FailureLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and self.digests and scope["path"].startswith(PROTECTED_PREFIX)
                and scope["path"].rstrip("/") not in self.open_paths):
            client = _client(scope)
            wait = self.limiter.retry_after(client)
            if wait is not None:  # checked before the key, so a blocked client learns nothing about its guesses
                await _send_json(send, 429, f"too many failed authentications from this client: retry in {wait} s",
                                 [(b"retry-after", str(wait).encode())])
                return
            authorization = _header(scope, b"authorization")
            reason = auth_failure(authorization, self.digests)
            if reason is not None:
                if authorization:
                    self.limiter.record(client)
                await _send_json(send, 401, reason, [(b"www-authenticate", b'Bearer realm="metalearn"')])
                return
        await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """413 (JSON) for request bodies above the limit: upload paths get ``upload_limit``, others ``limit``.

    A declared ``Content-Length`` above the limit is refused before reading; otherwise the body is
    counted as it streams in and the request is stopped once it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int, upload_paths: Iterable[str] = (),
                 upload_allowance: int = 0) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit
        self.upload_allowance = upload_allowance  # multipart framing and form fields around the file
        self.upload_paths = frozenset(upload_paths)

    def _limit_for(self, path: str) -> tuple[int, str]:
        """The enforced limit and the message of a 413 for requests to ``path``."""
        if path.rstrip("/") in self.upload_paths:
            return (self.upload_limit + self.upload_allowance,
                    f"upload too large: the limit is {self.upload_limit:,} bytes (METALEARN_API_MAX_UPLOAD_BYTES)")
        return self.limit, f"request body too large: the limit is {self.limit:,} bytes (METALEARN_API_MAX_BODY_MB)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit, message = self._limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_json(send, 400, "invalid Content-Length header")
                return
            if size > limit:
                await _send_json(send, 413, message, [(b"connection", b"close")])
                return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return incoming

        async def guarded_send(outgoing: Message) -> None:
            nonlocal started
            if exceeded:  # the app turned our exception into an error response: answer 413 instead
                if outgoing["type"] == "http.response.start" and not started:
                    started = True
                    await _send_json(send, 413, message, [(b"connection", b"close")])
                return
            if outgoing["type"] == "http.response.start":
                started = True
            await send(outgoing)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, message, [(b"connection", b"close")])


async def require_api_key(request: Request,
                          credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> None:
    """Dependency: documents the bearer scheme in OpenAPI and checks the key (behind :class:`APIKeyMiddleware`)."""
    digests = request.app.state.metalearn.settings.api_key_hashes
    reason = auth_failure(request.headers.get("authorization"), digests)
    if reason is not None:
        raise HTTPException(status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"})


async def current_identity(request: Request,
                           credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
                           ) -> Identity:
    """Dependency: the identity of the request's key (``anonymous`` when the server has no keys); 401 without a
    valid key (normally refused earlier by :class:`APIKeyMiddleware`)."""
    keys = request.app.state.metalearn.settings.api_keys
    if not keys:
        return ANONYMOUS_IDENTITY
    key = key_of(bearer_token(request.headers.get("authorization")), keys)
    if key is None:
        raise HTTPException(status_code=401, detail="invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return Identity(key.name, admin=key.admin)
