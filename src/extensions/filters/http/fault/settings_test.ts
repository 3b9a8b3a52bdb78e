import assert from "node:assert/strict";
import type { HttpRequest } from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import { createEntry, RuntimeSnapshot } from "../../../../runtime/snapshot.ts";
import { httpFaultSchema } from "./config.ts";
import { FaultSettings } from "./settings.ts";

function rt(values: Record<string, string>): RuntimeSnapshot {
  return new RuntimeSnapshot([{
    name: "t",
    values: new Map(Object.entries(values).map(([k, v]) => [k, createEntry(v)])),
  }]);
}

function req(headers: Record<string, string> = {}): HttpRequest {
  const h = new HeaderMap();
  for (const [k, v] of Object.entries(headers)) h.add(k, v);
  return {
    method: "GET",
    path: "/",
    authority: "x",
    scheme: "http",
    protocol: "HTTP/1.1",
    headers: h,
    contentLength: 0,
  };
}

const fault = (c: unknown) => new FaultSettings(httpFaultSchema.parse(c));
const EMPTY = rt({});

Deno.test("fault runtime: abort percent and HTTP status keys override the config", () => {
  const s = fault({ abort: { http_status: 503, percentage: { numerator: 0 } } });
  assert.equal(s.abort(req(), EMPTY, undefined), 0);
  assert.equal(s.abort(req(), rt({ "fault.http.abort.abort_percent": "100" }), undefined), 503);
  const r = rt({ "fault.http.abort.abort_percent": "100", "fault.http.abort.http_status": "418" });
  assert.equal(s.abort(req(), r, undefined), 418);
  // a FractionalPercent value
  assert.equal(
    s.abort(
      req(),
      rt({ "fault.http.abort.abort_percent": "numerator: 1000000\ndenominator: MILLION" }),
      undefined,
    ),
    503,
  );
  // a status outside 200-599 is ignored
  assert.equal(
    s.abort(
      req(),
      rt({ "fault.http.abort.abort_percent": "100", "fault.http.abort.http_status": "99" }),
      undefined,
    ),
    503,
  );
});

Deno.test("fault runtime: custom keys (*_runtime) and per downstream cluster keys", () => {
  const s = fault({
    abort: { http_status: 500, percentage: { numerator: 100 } },
    delay: { fixed_delay: "2s", percentage: { numerator: 0 } },
    abort_percent_runtime: "my.abort",
    delay_percent_runtime: "my.delay",
    delay_duration_runtime: "my.duration",
  });
  assert.equal(
    s.abort(req(), rt({ "fault.http.abort.abort_percent": "0" }), undefined),
    500,
    "default key unused",
  );
  assert.equal(s.abort(req(), rt({ "my.abort": "0" }), undefined), 0);
  assert.equal(s.delayMs(req(), rt({ "my.delay": "100" }), undefined), 2000);
  assert.equal(s.delayMs(req(), rt({ "my.delay": "100", "my.duration": "15" }), undefined), 15);
  // a downstream cluster's keys replace the general percent keys; the duration key still applies first
  const dsValues = {
    "my.abort": "100",
    "fault.http.web.abort.abort_percent": "0",
    "fault.http.web.delay.fixed_delay_percent": "100",
    "my.duration": "15",
  };
  const ds = rt(dsValues);
  assert.equal(s.abort(req(), ds, "web"), 0);
  assert.equal(s.delayMs(req(), ds, "web"), 15);
  assert.equal(
    s.delayMs(
      req(),
      rt({
        ...dsValues,
        "fault.http.web.delay.fixed_duration_ms": "7",
      }),
      "web",
    ),
    7,
  );
  const st = rt({ "fault.http.web.abort.http_status": "502", "fault.http.abort.http_status": "504" });
  assert.equal(s.abort(req(), st, "web"), 502);
  assert.equal(s.abort(req(), st, undefined), 504);
  assert.equal(
    s.abort(req(), rt({ "fault.http.abort.http_status": "504" }), "web"),
    500,
    "per cluster falls back to config",
  );
});

Deno.test("fault runtime: gRPC status, header faults, max_active_faults", () => {
  const g = fault({ abort: { grpc_status: 14, percentage: { numerator: 100 } } });
  assert.equal(g.abort(req(), EMPTY, undefined), -1 - 14);
  assert.equal(g.abort(req(), rt({ "fault.http.abort.grpc_status": "8" }), undefined), -1 - 8);
  const h = fault({
    abort: { header_abort: {}, percentage: { numerator: 100 } },
    delay: { header_delay: {}, percentage: { numerator: 100 } },
  });
  assert.equal(h.abort(req(), EMPTY, undefined), 0, "no header: no abort");
  assert.equal(h.abort(req({ "x-envoy-fault-abort-request": "429" }), EMPTY, undefined), 429);
  assert.equal(
    h.abort(
      req({ "x-envoy-fault-abort-request": "429" }),
      rt({ "fault.http.abort.abort_percent": "0" }),
      undefined,
    ),
    0,
  );
  assert.equal(h.delayMs(req({ "x-envoy-fault-delay-request": "30" }), EMPTY, undefined), 30);
  assert.equal(
    h.delayMs(
      req({ "x-envoy-fault-delay-request": "30" }),
      rt({ "fault.http.delay.fixed_duration_ms": "5" }),
      undefined,
    ),
    5,
  );
  assert.equal(h.delayMs(req(), EMPTY, undefined), 0);
  const m = fault({ max_active_faults: 3 });
  assert.equal(m.maxActive(EMPTY), 3);
  assert.equal(m.maxActive(rt({ "fault.http.max_active_faults": "1" })), 1);
  assert.equal(fault({}).maxActive(EMPTY), Infinity);
  assert.equal(fault({ max_active_faults_runtime: "x.max" }).maxActive(rt({ "x.max": "0" })), 0);
});
