import assert from "node:assert/strict";
import { HeaderMap } from "../http/headers.ts";
import { mutateTraceReason, requestIdInteger, traceReasonOf, withTraceReason } from "./request_id.ts";
import { TraceReason } from "./types.ts";

const ID = "00001388-0000-4000-8000-000000000000"; // first 8 hex: 5000 -> 5000 % 10000 = 5000
const ALL = { client: 10000, random: 10000, overall: 10000 };
const at14 = (h: HeaderMap) => h.get("x-request-id")![14];

Deno.test("x-request-id trace bits (Envoy's UUID request id extension)", async (t) => {
  await t.step("the 15th character carries the reason", () => {
    assert.equal(traceReasonOf(ID), TraceReason.NotTraceable);
    assert.equal(traceReasonOf(withTraceReason(ID, TraceReason.Sampling)), TraceReason.Sampling);
    assert.equal(withTraceReason(ID, TraceReason.Sampling)[14], "9");
    assert.equal(withTraceReason(ID, TraceReason.ServiceForced)[14], "a");
    assert.equal(withTraceReason(ID, TraceReason.ClientForced)[14], "b");
    assert.equal(
      withTraceReason(withTraceReason(ID, TraceReason.Sampling), TraceReason.NotTraceable)[14],
      "4",
    );
    assert.equal(traceReasonOf("short"), TraceReason.NotTraceable);
    assert.equal(withTraceReason("short", TraceReason.Sampling), "short");
    assert.equal(requestIdInteger(ID), 5000);
    assert.equal(requestIdInteger("zz001388-0000"), -1);
  });

  await t.step("random sampling compares the id's first 8 hex digits mod 10000", () => {
    const h = HeaderMap.from([["x-request-id", ID]]);
    assert.equal(mutateTraceReason(h, { ...ALL, random: 5000 }, Math.random), TraceReason.NotTraceable);
    assert.equal(at14(h), "4");
    assert.equal(mutateTraceReason(h, { ...ALL, random: 5001 }, Math.random), TraceReason.Sampling);
    assert.equal(at14(h), "9");
  });

  await t.step("a request already traced keeps its reason; overall sampling still caps it", () => {
    const h = HeaderMap.from([["x-request-id", withTraceReason(ID, TraceReason.ServiceForced)]]);
    assert.equal(mutateTraceReason(h, { ...ALL, random: 0 }, Math.random), TraceReason.ServiceForced);
    assert.equal(mutateTraceReason(h, { ...ALL, overall: 5000 }, Math.random), TraceReason.NotTraceable);
    assert.equal(at14(h), "4");
  });

  await t.step("client trace id (client_sampling), then force trace, then random", () => {
    const h = HeaderMap.from([["x-request-id", ID], ["x-client-trace-id", "c"], [
      "x-envoy-force-trace",
      "1",
    ]]);
    assert.equal(mutateTraceReason(h, { ...ALL, random: 0 }, () => 0.5), TraceReason.ClientForced);
    const h2 = HeaderMap.from([["x-request-id", ID], ["x-client-trace-id", "c"], [
      "x-envoy-force-trace",
      "1",
    ]]);
    assert.equal(
      mutateTraceReason(h2, { ...ALL, client: 4000, random: 0 }, () => 0.5),
      TraceReason.ServiceForced,
    );
    assert.equal(at14(h2), "a");
  });

  await t.step("no request id or one that is not a UUID: not traced, left alone", () => {
    assert.equal(mutateTraceReason(new HeaderMap(), ALL, Math.random), TraceReason.NotTraceable);
    const h = HeaderMap.from([["x-request-id", "abc"]]);
    assert.equal(mutateTraceReason(h, ALL, Math.random), TraceReason.NotTraceable);
    assert.equal(h.get("x-request-id"), "abc");
  });
});
