"""Unit tests of nuncio_client (run: python3 -m unittest discover -s src/client/python; also run by
src/client/python_test.ts). A local http.server stands for the egress listener and echoes what it saw."""

import http.server
import json
import os
import threading
import unittest
from contextlib import contextmanager
from unittest import mock
from wsgiref.util import setup_testing_defaults

import nuncio_client as nc

TRACE = {
    "x-request-id": "11111111-2222-4333-8444-555555555555",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "traceparent": "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
    "x-envoy-force-trace": "true",
}


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        status = 503 if self.path.startswith("/fail") else 200
        out = json.dumps(
            {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
             "body": body}
        ).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        if status == 200:
            self.send_header("x-envoy-upstream-service-time", "2")
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@contextmanager
def echo_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        t.join()


class ContextTest(unittest.TestCase):
    def test_incoming_picks_trace_headers_only_inside(self):
        self.assertEqual(nc.current_headers(), ())
        with nc.incoming({**{k.upper(): v for k, v in TRACE.items()}, "Authorization": "secret"}):
            self.assertEqual(dict(nc.current_headers()), TRACE)
            self.assertEqual(nc.request_id(), TRACE["x-request-id"])
        self.assertIsNone(nc.request_id())

    def test_missing_request_id_is_made(self):
        with nc.incoming({}):
            rid = nc.request_id()
            self.assertRegex(rid, r"^[0-9a-f-]{36}$")
        self.assertEqual(nc.pick_propagated({}, generate_request_id=False), ())

    def test_wsgi_middleware_and_decorator(self):
        seen = []

        def app(environ, start_response):
            seen.append(nc.request_id())
            start_response("200 OK", [])
            yield b"a"
            seen.append(nc.request_id())  # still inside while the body is produced

        environ = {"HTTP_X_REQUEST_ID": "w1", "HTTP_TRACEPARENT": "00-a-b-01"}
        setup_testing_defaults(environ)
        body = nc.wsgi_middleware(app)(environ, lambda *a: None)
        self.assertEqual(list(body), [b"a"])
        self.assertEqual(seen, ["w1", "w1"])

        class Handler:
            headers = {"X-Request-Id": "d1"}

            @nc.with_incoming
            def handle(self):
                return nc.request_id()

        self.assertEqual(Handler().handle(), "d1")


class PolicyTest(unittest.TestCase):
    def test_defaults_by_method_and_overrides(self):
        with nc.incoming({"x-request-id": "r"}):
            self.assertEqual(
                nc.request_headers("users", "GET"),
                {
                    "x-request-id": "r",
                    "x-envoy-upstream-rq-timeout-ms": "15000",
                    "x-envoy-max-retries": "2",
                    "x-envoy-retry-on": "5xx,connect-failure,refused-stream",
                    "host": "users",
                },
            )
            self.assertEqual(
                nc.request_headers("users", "POST"),
                {"x-request-id": "r", "x-envoy-upstream-rq-timeout-ms": "15000", "x-envoy-max-retries": "0",
                 "host": "users"},
            )
            self.assertEqual(
                nc.request_headers("users", "GET", timeout_ms=None, retries=None, headers={"X-Request-Id": "mine"}),
                {"x-request-id": "mine", "host": "users"},
            )
            h = nc.request_headers("users", "POST", timeout_ms=250, retries=1, retry_on="reset", per_try_timeout_ms=90)
            self.assertEqual(h["x-envoy-upstream-rq-per-try-timeout-ms"], "90")
            self.assertEqual(h["x-envoy-retry-on"], "reset")
            self.assertEqual(h["x-envoy-max-retries"], "1")

    def test_egress_address(self):
        with mock.patch.dict(os.environ, {}, clear=False):
            os.environ.pop("NUNCIO_EGRESS", None)
            self.assertEqual(nc.egress_address(), ("127.0.0.1", 9001))
            os.environ["NUNCIO_EGRESS"] = "127.0.0.2:9100"
            self.assertEqual(nc.egress_address(), ("127.0.0.2", 9100))
            self.assertEqual(nc.egress_address("[::1]:1"), ("::1", 1))
            with self.assertRaises(ValueError):
                nc.egress_address("nope")


class CallTest(unittest.TestCase):
    def test_call_sends_host_policy_context(self):
        with echo_server() as egress, nc.incoming(TRACE):
            res = nc.call("users", "/v1/u?id=1", egress=egress, timeout_ms=2000)
            self.assertEqual(res.status, 200)
            seen = res.json()
            self.assertEqual(seen["headers"]["host"], "users")
            self.assertEqual(seen["path"], "/v1/u?id=1")
            self.assertEqual(seen["headers"]["x-envoy-upstream-rq-timeout-ms"], "2000")
            for k, v in TRACE.items():
                self.assertEqual(seen["headers"][k], v, k)
            posted = nc.call("users", "v1/u", json={"a": 1}, egress=egress).json()
            self.assertEqual((posted["method"], posted["body"]), ("POST", '{"a": 1}'))
            self.assertEqual(posted["headers"]["content-type"], "application/json")
            self.assertEqual(posted["headers"]["x-envoy-max-retries"], "0")

    def test_failure_is_a_response_with_an_outcome(self):
        with echo_server() as egress:
            res = nc.call("users", "/fail", egress=egress)
            self.assertEqual(res.status, 503)
            self.assertEqual(res.outcome()["reason"], "unavailable")
            with self.assertRaises(nc.ProxyError) as ctx:
                res.raise_for_status("users")
            self.assertIn("users failed: 503 (unavailable)", str(ctx.exception))

    def test_outcome_rules(self):
        def o(status, **h):
            return nc.Response(status, {k.replace("_", "-"): v for k, v in h.items()}).outcome()["reason"]

        self.assertIsNone(o(200))
        self.assertEqual(o(503, x_envoy_overloaded="true"), "overloaded")
        self.assertEqual(o(429, x_envoy_ratelimited="true"), "rate_limited")
        self.assertEqual(o(504), "timeout")
        self.assertEqual(o(502), "bad_gateway")
        self.assertEqual(o(503, x_envoy_upstream_service_time="1"), "upstream")


if __name__ == "__main__":
    unittest.main()
