import assert from "node:assert/strict";
import { TimerWheel } from "../../../../common/timer_wheel.ts";
import { GrpcError } from "../../../../grpc/client.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import { registerLocalRateLimitService } from "../../../../ratelimit/local.ts";
import { RateLimitServiceError } from "../../../../ratelimit/types.ts";
import type { RateLimitRequest, RateLimitResponse } from "../../../../ratelimit/types.ts";
import { RlsCode, type RlsDecision } from "./client.ts";
import { GrpcRateLimitClient } from "./grpc_client.ts";

const PORT = 1; // never bound: the direct path opens no socket
const RESPONSE: RateLimitResponse = {
  overallCode: 2,
  statuses: [
    { code: 1, limitRemaining: 0 },
    {
      code: 2,
      currentLimit: { name: "", requestsPerUnit: 10, unit: 2 },
      limitRemaining: 0,
      durationUntilResetMs: 1500,
    },
  ],
  responseHeadersToAdd: [{ key: "a", value: "1" }],
  requestHeadersToAdd: [],
};

function client(address: string, timers: TimerWheel): GrpcRateLimitClient {
  const host = { address, port: PORT };
  const cluster = {
    chooseHost: () => host,
    connectTcp: () => Promise.resolve({ ok: false, detail: "no sockets in this test" }),
  };
  const ctx = { clusterManager: { get: () => cluster }, timers } as unknown as FactoryContext;
  return new GrpcRateLimitClient({ grpc_service: { envoy_grpc: { cluster_name: "rls" } } }, ctx);
}

Deno.test("rate-limit client: the embedded service of this isolate is called directly", async (t) => {
  const timers = new TimerWheel(undefined, 5);
  let answer: (req: RateLimitRequest) => RateLimitResponse | Promise<RateLimitResponse> = () => RESPONSE;
  const seen: RateLimitRequest[] = [];
  const unregister = registerLocalRateLimitService("0.0.0.0", PORT, {
    shouldRateLimit: (req) => (seen.push(req), answer(req)),
  });
  const c = client("127.0.0.1", timers);
  const req = { domain: "d", descriptors: [[{ key: "k", value: "v" }]], hitsAddend: 0 };
  try {
    await t.step("memory counters: the decision at once, as the gRPC path decodes it", () => {
      const res = c.shouldRateLimit(req, 20) as RlsDecision;
      assert.ok(!(res instanceof Promise) && !(res instanceof Error));
      assert.deepEqual(seen.pop(), {
        domain: "d",
        descriptors: [{ entries: req.descriptors[0] }],
        hitsAddend: 0,
      });
      assert.deepEqual(res, {
        overallCode: RlsCode.OverLimit,
        statuses: [
          { code: 1, requestsPerUnit: 0, unit: 0, limitRemaining: 0, secondsUntilReset: -1 },
          { code: 2, requestsPerUnit: 10, unit: 2, limitRemaining: 0, secondsUntilReset: 2 },
        ],
        responseHeadersToAdd: [["a", "1"]],
        requestHeadersToAdd: [],
      });
    });
    await t.step("a refusal becomes the gRPC status a remote caller would see", () => {
      answer = () => {
        throw new RateLimitServiceError("No rate limit configuration loaded", 14);
      };
      const res = c.shouldRateLimit(req, 20);
      assert.ok(res instanceof GrpcError);
      assert.equal(res.status, 14);
    });
    await t.step("an answer that waits (Redis) resolves, or fails at the deadline", async () => {
      answer = () => Promise.resolve(RESPONSE);
      const ok = await c.shouldRateLimit(req, 20);
      assert.equal((ok as RlsDecision).overallCode, RlsCode.OverLimit);
      answer = () => Promise.reject(new RateLimitServiceError("Redis down", 14));
      assert.equal(((await c.shouldRateLimit(req, 20)) as GrpcError).status, 14);
      let late!: (r: RateLimitResponse) => void;
      answer = () => new Promise((r) => late = r);
      const t0 = performance.now();
      const alive = setTimeout(() => {}, 5000); // the wheel's timer is unref'd, as in a worker
      const res = await c.shouldRateLimit(req, 30);
      clearTimeout(alive);
      assert.ok(res instanceof GrpcError && res.status === 4, String(res));
      assert.ok(performance.now() - t0 >= 25);
      late(RESPONSE); // a late answer changes nothing
    });
    await t.step("another address, or the service gone: the gRPC path", async () => {
      answer = () => RESPONSE;
      const other = client("10.0.0.1", timers);
      const viaGrpc = other.shouldRateLimit(req, 20);
      assert.ok(viaGrpc instanceof Promise);
      assert.match(String(await viaGrpc), /no sockets in this test/);
      other.close();
      unregister();
      const res = await c.shouldRateLimit(req, 20);
      assert.ok(res instanceof GrpcError);
    });
  } finally {
    unregister();
    c.close();
  }
});
