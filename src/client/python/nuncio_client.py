"""nuncio thin client for Python 3.11+, standard library only (urllib, contextvars).

Calls other services through the local nuncio egress listener with ``Host: <service>`` (how nuncio's
generated egress routes: one virtual host per upstream), sets Envoy's timeout and retry request headers,
and carries the incoming request's x-request-id and trace headers on to every outgoing call.

    from nuncio_client import call, wsgi_middleware
    app = wsgi_middleware(app)              # WSGI: capture each request's headers
    res = call("users", "/v1/users/7")      # inside a request: the ids travel on
    res.status, res.headers, res.json()

The egress listener is ``NUNCIO_EGRESS`` (``host:port``), else ``127.0.0.1:9001``. Same defaults as the
TypeScript client (src/client/client.js): 15 s timeout, 2 retries on ``5xx,connect-failure,refused-stream``
for idempotent methods, none for others (``x-envoy-max-retries: 0`` so a route's retry policy cannot repeat
a POST either); ``None`` sends no header, so the route's own setting applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json as _json
import os
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

__all__ = [
    "PROPAGATED_HEADERS",
    "DEFAULT_EGRESS",
    "Response",
    "ProxyError",
    "call",
    "egress_address",
    "incoming",
    "current_headers",
    "request_id",
    "wsgi_middleware",
    "with_incoming",
    "request_headers",
]

#: Headers propagated from the incoming request to outgoing calls (lower case), as in the TS client.
PROPAGATED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "traceparent",
    "tracestate",
    "x-ot-span-context",
    "x-client-trace-id",
    "x-envoy-force-trace",
)

DEFAULT_EGRESS = "127.0.0.1:9001"
DEFAULT_TIMEOUT_MS = 15000
DEFAULT_RETRIES = 2
DEFAULT_RETRY_ON = "5xx,connect-failure,refused-stream"
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_UNSET: Any = object()

_current: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "nuncio_incoming", default=()
)


def _get(headers: Any, name: str) -> str | None:
    """One header from a Mapping (any case), an email.message.Message (http.server) or (name, value) pairs."""
    if hasattr(headers, "get_all"):  # http.server's HTTPMessage, email.message.Message
        values = headers.get_all(name)
        return ", ".join(values) if values else None
    if isinstance(headers, Mapping):
        v = headers.get(name)
        if v is None:
            for k, val in headers.items():
                if k.lower() == name:
                    v = val
                    break
        return v
    found = [v for k, v in headers if k.lower() == name]
    return ", ".join(found) if found else None


def pick_propagated(headers: Any, generate_request_id: bool = True) -> tuple[tuple[str, str], ...]:
    """The propagated headers of an incoming request; a new x-request-id when it has none (default)."""
    out = []
    for name in PROPAGATED_HEADERS:
        v = _get(headers, name)
        if v:
            out.append((name, v))
    if generate_request_id and not any(n == "x-request-id" for n, _ in out):
        out.insert(0, ("x-request-id", str(uuid.uuid4())))
    return tuple(out)


def _wsgi_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """Request headers of a WSGI environ (HTTP_X_REQUEST_ID -> x-request-id)."""
    return {
        k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")
    }


@contextlib.contextmanager
def incoming(headers: Any, generate_request_id: bool = True) -> Iterator[None]:
    """Within the block, calls carry the tracing headers of ``headers`` (a mapping, HTTPMessage or pairs)."""
    token = _current.set(pick_propagated(headers, generate_request_id))
    try:
        yield
    finally:
        _current.reset(token)


def current_headers() -> tuple[tuple[str, str], ...]:
    """The propagated headers of the request being handled (empty outside one)."""
    return _current.get()


def request_id() -> str | None:
    """The x-request-id of the request being handled, for logs."""
    return next((v for n, v in _current.get() if n == "x-request-id"), None)


def wsgi_middleware(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wraps a WSGI app so each request runs with its tracing headers captured.

    The body iterable is consumed inside the context, so a streaming app's calls keep the ids too.
    """

    @functools.wraps(app)
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with incoming(_wsgi_headers(environ)):
            result = app(environ, start_response)
            try:
                return [chunk for chunk in result]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return wrapped


def with_incoming(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for a handler whose first argument has ``.headers`` (http.server's BaseHTTPRequestHandler
    methods, most framework request objects) or is a WSGI environ: runs it with those headers captured."""

    @functools.wraps(fn)
    def wrapped(first: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(first, Mapping) and "REQUEST_METHOD" in first:
            headers: Any = _wsgi_headers(first)
        else:
            headers = getattr(first, "headers", {})
        with incoming(headers):
            return fn(first, *args, **kwargs)

    return wrapped


def egress_address(option: str | None = None) -> tuple[str, int]:
    """The option, else NUNCIO_EGRESS, else 127.0.0.1:9001, as (host, port)."""
    text = (option or os.environ.get("NUNCIO_EGRESS") or DEFAULT_EGRESS).strip()
    m = re.fullmatch(r"(?:\[([^\]]+)\]|([^:\[\]]*)):(\d{1,5})", text) or re.fullmatch(r"()()(\d{1,5})", text)
    port = int(m.group(3)) if m else 0
    if not m or not 1 <= port <= 65535:
        raise ValueError(f'Egress address must be HOST:PORT (e.g. 127.0.0.1:9001), not "{text}"')
    return (m.group(1) or m.group(2) or "127.0.0.1", port)


def request_headers(
    service: str,
    method: str,
    timeout_ms: Any = _UNSET,
    retries: Any = _UNSET,
    retry_on: Any = _UNSET,
    per_try_timeout_ms: Any = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers of one call (lower case): the caller's, the propagated ones, the policy, host."""
    out = {k.lower(): v for k, v in (headers or {}).items()}
    for n, v in _current.get():
        out.setdefault(n, v)
    if timeout_ms is _UNSET:
        timeout_ms = DEFAULT_TIMEOUT_MS
    if retries is _UNSET:
        retries = DEFAULT_RETRIES if method in _IDEMPOTENT else 0
    if retry_on is _UNSET:
        retry_on = DEFAULT_RETRY_ON
    if timeout_ms is not None:
        out["x-envoy-upstream-rq-timeout-ms"] = str(_non_negative(timeout_ms))
    if per_try_timeout_ms is not None:
        out["x-envoy-upstream-rq-per-try-timeout-ms"] = str(_non_negative(per_try_timeout_ms))
    if retries is not None:
        out["x-envoy-max-retries"] = str(_non_negative(retries))
        if retries > 0 and retry_on:
            out["x-envoy-retry-on"] = retry_on
    out["host"] = service
    return out


def _non_negative(n: float) -> int:
    if n < 0:
        raise ValueError(f"Expected a non-negative number, not {n}")
    return int(n)


@dataclass
class Response:
    """A finished call: status, headers (lower-case names) and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    reason: str = ""
    _outcome: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status < 400

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return _json.loads(self.body)

    def outcome(self) -> dict[str, Any]:
        """What the proxy's headers say (see src/client/outcome.js: the same rules)."""
        h = self.headers
        service_time = h.get("x-envoy-upstream-service-time")
        from_upstream = service_time is not None
        overloaded = h.get("x-envoy-overloaded") == "true"
        rate_limited = "x-envoy-ratelimited" in h
        reason = None
        if not self.ok:
            if overloaded:
                reason = "overloaded"
            elif rate_limited and self.status == 429:
                reason = "rate_limited"
            elif self.status < 500:
                reason = "client"
            elif from_upstream:
                reason = "upstream"
            else:
                reason = {504: "timeout", 502: "bad_gateway", 503: "unavailable"}.get(self.status, "upstream")
        return {
            "status": self.status,
            "ok": self.ok,
            "from_upstream": from_upstream,
            "overloaded": overloaded,
            "rate_limited": rate_limited,
            "reason": reason,
        }

    def raise_for_status(self, service: str = "") -> "Response":
        if not self.ok:
            raise ProxyError(service, self.outcome())
        return self


class ProxyError(Exception):
    """A failed call with what the proxy's headers said."""

    def __init__(self, service: str, outcome: dict[str, Any]):
        super().__init__(f"Call to {service} failed: {outcome['status']} ({outcome['reason']})")
        self.service = service
        self.outcome = outcome
        self.status = outcome["status"]


def call(
    service: str,
    path: str,
    method: str | None = None,
    body: bytes | str | None = None,
    json: Any = _UNSET,
    headers: Mapping[str, str] | None = None,
    timeout_ms: Any = _UNSET,
    retries: Any = _UNSET,
    retry_on: Any = _UNSET,
    per_try_timeout_ms: int | None = None,
    egress: str | None = None,
) -> Response:
    """Calls ``path`` of ``service`` through the egress listener; returns the Response for any status.

    Raises OSError (urllib.error.URLError) when the egress listener cannot be reached. The socket timeout is
    the proxy's timeout plus 1 s (none when ``timeout_ms`` is None or 0).
    """
    method = (method or ("POST" if json is not _UNSET or body is not None else "GET")).upper()
    h = request_headers(service, method, timeout_ms, retries, retry_on, per_try_timeout_ms, headers)
    data: bytes | None
    if json is not _UNSET:
        data = _json.dumps(json).encode()
        h.setdefault("content-type", "application/json")
    else:
        data = body.encode() if isinstance(body, str) else body
    host, port = egress_address(egress)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"http://{netloc}{path if path.startswith('/') else '/' + path}"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    effective = DEFAULT_TIMEOUT_MS if timeout_ms is _UNSET else timeout_ms
    socket_timeout = (effective + 1000) / 1000 if effective else None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    try:
        with opener.open(req, timeout=socket_timeout) as res:
            return Response(res.status, _lower(res.headers.items()), res.read(), res.reason)
    except urllib.error.HTTPError as err:
        with err:
            return Response(err.code, _lower(err.headers.items()), err.read(), str(err.reason))


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in items:
        k = k.lower()
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects go back to the caller as they are (a Location names the service, not the egress)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
