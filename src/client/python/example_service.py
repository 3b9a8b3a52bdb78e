"""A tiny WSGI service using nuncio_client (stdlib only): `GET /chain...` answers what it received and, when
NEXT_SERVICE is set, what that service answered when called through the egress listener (NUNCIO_EGRESS)
with the same path. `?fail_once=KEY` answers 503 the first time a KEY is seen (to watch nuncio retry).

    NUNCIO_EGRESS=127.0.0.1:9001 NEXT_SERVICE=c PORT=8082 python3 example_service.py

Prints `PORT <n>` once listening (PORT=0 picks a free port). Used by tests/thin_client_test.ts as service B.
"""

import json
import os
import sys
import threading
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nuncio_client as nc  # noqa: E402

SERVICE = os.environ.get("SERVICE_NAME", "b")
NEXT = os.environ.get("NEXT_SERVICE", "")
_seen: dict[str, int] = {}
_lock = threading.Lock()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    query = environ.get("QUERY_STRING", "")
    params = parse_qs(query)
    key = params.get("fail_once", [""])[0]
    with _lock:
        attempts = _seen[key] = _seen.get(key, 0) + 1
    if key and attempts == 1:
        start_response("503 Service Unavailable", [("content-type", "text/plain")])
        return [b"not yet"]
    received = {
        k[5:].lower().replace("_", "-"): v
        for k, v in environ.items()
        if k.startswith("HTTP_") and (k.startswith("HTTP_X_") or k in ("HTTP_B3", "HTTP_TRACEPARENT", "HTTP_TRACESTATE"))
    }
    out = {"service": SERVICE, "request_id": nc.request_id(), "attempts": attempts, "received": received}
    status = "200 OK"
    if NEXT and path.startswith("/chain"):
        res = nc.call(NEXT, path + ("?" + query if query else ""))
        out["next_status"] = res.status
        out["next"] = res.json() if res.headers.get("content-type", "").startswith("application/json") else res.text()
        if not res.ok:
            status = f"{res.status} Upstream Failed"
            out["next_outcome"] = res.outcome()
    body = json.dumps(out).encode()
    start_response(status, [("content-type", "application/json"), ("content-length", str(len(body)))])
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    server = make_server("127.0.0.1", int(os.environ.get("PORT", "0")), nc.wsgi_middleware(app), _Server, _QuietHandler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
