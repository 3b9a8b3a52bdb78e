import assert from "node:assert/strict";
import { UpstreamError } from "../../upstream/types.ts";
import { HeaderMap } from "../headers.ts";
import { retryPolicySchema } from "./config_retry.ts";
import {
  backOffMs,
  parseRetryOn,
  retriableReset,
  retriableResponse,
  RetryOn,
  RetryPolicy,
} from "./retry_policy.ts";

Deno.test("retry policy", async (t) => {
  await t.step("back-off: full jitter in [0, (2^n - 1) x base), capped at max_interval", () => {
    // a fake random at both ends of [0, 1)
    assert.equal(backOffMs(1, 25, 250, 0), 0);
    assert.equal(backOffMs(1, 25, 250, 0.999999), 24);
    assert.equal(backOffMs(2, 25, 250, 0.999999), 74);
    assert.equal(backOffMs(3, 25, 250, 0.999999), 174);
    assert.equal(backOffMs(4, 25, 250, 0.999999), 250);
    assert.equal(backOffMs(40, 25, 250, 0.5), 250);
    for (let n = 1; n < 10; n++) {
      for (const r of [0, 0.1, 0.5, 0.9, 0.999]) {
        const ms = backOffMs(n, 25, 250, r);
        assert.ok(ms >= 0 && ms <= 250 && ms < (2 ** n - 1) * 25, `n=${n} r=${r}: ${ms}`);
      }
    }
  });

  await t.step("defaults: one retry, 25 ms base, 10 x base max", () => {
    const p = new RetryPolicy(retryPolicySchema.parse({ retry_on: "5xx" }));
    assert.equal(p.numRetries, 1);
    assert.equal(p.baseIntervalMs, 25);
    assert.equal(p.maxIntervalMs, 250);
    const q = new RetryPolicy(retryPolicySchema.parse({ retry_back_off: { base_interval: "0.1s" } }));
    assert.equal(q.maxIntervalMs, 1000);
  });

  await t.step("retry_on parsing: HTTP and gRPC names, unknown names reported", () => {
    const r = parseRetryOn("5xx, reset,unavailable,bogus");
    assert.equal(r.bits, RetryOn.FiveXx | RetryOn.Reset | RetryOn.GrpcUnavailable);
    assert.deepEqual(r.unknown, ["bogus"]);
    assert.deepEqual(parseRetryOn("5xx,cancelled", true).unknown, ["5xx"]);
    assert.equal(retryPolicySchema.safeParse({ retry_on: "nope" }).success, false);
    assert.equal(
      retryPolicySchema.safeParse({ retry_host_predicate: [{ name: "envoy.retry_host_predicates.other" }] })
        .success,
      false,
    );
  });

  await t.step("which responses and resets are retriable", () => {
    const h = new HeaderMap();
    const p = new RetryPolicy(retryPolicySchema.parse({
      retry_on: "retriable-status-codes,retriable-headers",
      retriable_status_codes: [418],
      retriable_headers: [{ name: "x-retry", exact_match: "yes" }],
    }));
    assert.equal(retriableResponse(null, RetryOn.FiveXx, 500, h, null), true);
    assert.equal(retriableResponse(null, RetryOn.FiveXx, 499, h, null), false);
    assert.equal(retriableResponse(null, RetryOn.GatewayError, 500, h, null), false);
    assert.equal(retriableResponse(null, RetryOn.GatewayError, 504, h, null), true);
    assert.equal(retriableResponse(null, RetryOn.Retriable4xx, 409, h, null), true);
    assert.equal(retriableResponse(p, p.retryOn, 418, h, null), true);
    assert.equal(retriableResponse(p, p.retryOn, 200, h, null), false);
    assert.equal(retriableResponse(null, RetryOn.RetriableStatusCodes, 429, h, [429]), true);
    assert.equal(retriableResponse(p, p.retryOn, 200, HeaderMap.from([["x-retry", "yes"]]), null), true);
    assert.equal(
      retriableResponse(null, RetryOn.GrpcUnavailable, 200, HeaderMap.from([["grpc-status", "14"]]), null),
      true,
    );
    assert.equal(retriableReset(RetryOn.ConnectFailure, new UpstreamError("connect_failure")), true);
    assert.equal(retriableReset(RetryOn.ConnectFailure, new UpstreamError("connection_termination")), false);
    assert.equal(retriableReset(RetryOn.Reset, new UpstreamError("connection_termination")), true);
    assert.equal(retriableReset(RetryOn.GatewayError, new UpstreamError("per_try_timeout")), true);
    assert.equal(retriableReset(RetryOn.Retriable4xx, new UpstreamError("per_try_timeout")), false);
    const refused = new UpstreamError("remote_refused_stream_reset");
    assert.equal(retriableReset(RetryOn.RefusedStream, refused), true);
    assert.equal(retriableReset(RetryOn.ConnectFailure, refused), false);
    assert.equal(retriableReset(RetryOn.ResetBeforeRequest, new UpstreamError("connect_timeout")), true);
    assert.equal(new UpstreamError("overflow").retryable, false);
  });
});
