/**
 * `nuncio ratelimit` end to end: real redis-server, two service instances sharing one limit through Redis,
 * gRPC (h2c) and POST /json entry points, Redis stopped mid-test with fail-closed and fail-open instances,
 * reconnection, and a config reload that keeps the old limits when the new file is bad.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../src/common/clock.ts";
import { SHOULD_RATE_LIMIT_PATH } from "../src/ratelimit/rls_proto.ts";
import { decodeRateLimitResponse, encodeRateLimitRequest } from "../src/ratelimit/rls_proto.ts";
import { startRatelimitService } from "../src/ratelimit/run.ts";
import { startRedis } from "../src/ratelimit/test_redis.ts";
import { Code, Unit } from "../src/ratelimit/types.ts";
import { eventually, getText, grpcCall, postJson } from "./ratelimit_helpers.ts";

const LIMITS = `domain: edge
descriptors:
  - key: remote_address
    rate_limit: { unit: hour, requests_per_unit: 5 }
  - key: remote_address
    value: 10.0.0.1
    rate_limit: { unit: hour, requests_per_unit: 1 }
`;

const req = (ip: string, hits = 0) => ({
  domain: "edge",
  descriptors: [{ entries: [{ key: "remote_address", value: ip }] }],
  hits_addend: hits,
});

Deno.test("ratelimit service end to end", async (t) => {
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "nuncio_rl_" });
  const limitsPath = `${dir}/limits.yaml`;
  await Deno.writeTextFile(limitsPath, LIMITS);
  // one fixed instant for both replicas: windows cannot roll over during the test
  const clock = new ManualClock(1_700_000_000_000);
  const common = {
    limitsPath,
    redisUrl: redis.url,
    grpcPort: 0,
    httpPort: 0,
    watchIntervalMs: 30,
    clock,
    redisTimeoutMs: 300,
  };
  await using a = await startRatelimitService({ ...common, failureMode: "closed" });
  await using b = await startRatelimitService({ ...common, failureMode: "open" });
  try {
    assert.ok(a.loaded && b.loaded);

    await t.step("healthcheck and rlconfig", async () => {
      assert.deepEqual(await getText(a.httpPort!, "/healthcheck"), { status: 200, text: "OK" });
      const cfg = JSON.parse((await getText(a.httpPort!, "/rlconfig")).text);
      assert.equal(cfg.backend, "redis");
      assert.equal(cfg.failure_mode, "closed");
      assert.deepEqual(cfg.limits.map((l: { key: string }) => l.key), [
        "edge.remote_address",
        "edge.remote_address_10.0.0.1",
      ]);
    });

    await t.step("two replicas share one limit through Redis (gRPC and /json)", async () => {
      for (let i = 0; i < 3; i++) {
        const r = await postJson(a.httpPort!, req("1.1.1.1"));
        assert.equal(r.status, 200);
        assert.equal(r.body.overallCode, "OK");
      }
      const g = await grpcCall(
        b.grpcPort!,
        SHOULD_RATE_LIMIT_PATH,
        encodeRateLimitRequest({
          domain: "edge",
          descriptors: [{ entries: [{ key: "remote_address", value: "1.1.1.1" }] }],
          hitsAddend: 2,
        }),
      );
      assert.equal(g.status, 0);
      const res = decodeRateLimitResponse(g.body!);
      assert.equal(res.overallCode, Code.OK);
      assert.deepEqual(res.statuses[0].currentLimit, { name: "", requestsPerUnit: 5, unit: Unit.HOUR });
      assert.equal(res.statuses[0].limitRemaining, 0);
      assert.equal(res.statuses[0].durationUntilResetMs, (3600 - (1_700_000_000 % 3600)) * 1000);
      const over = await postJson(a.httpPort!, req("1.1.1.1"));
      assert.equal(over.status, 429);
      assert.deepEqual(over.body, {
        overallCode: "OVER_LIMIT",
        statuses: [{
          code: "OVER_LIMIT",
          currentLimit: { requestsPerUnit: 5, unit: "HOUR" },
          durationUntilReset: `${3600 - (1_700_000_000 % 3600)}s`,
        }],
      });
      const overG = decodeRateLimitResponse(
        (await grpcCall(
          a.grpcPort!,
          SHOULD_RATE_LIMIT_PATH,
          encodeRateLimitRequest({
            domain: "edge",
            descriptors: [{ entries: [{ key: "remote_address", value: "1.1.1.1" }] }],
            hitsAddend: 0,
          }),
        )).body!,
      );
      assert.equal(overG.overallCode, Code.OVER_LIMIT);
      // the per-descriptor stats of each replica count what it saw
      const statsA = (await getText(a.httpPort!, "/stats?filter=remote_address\\.")).text;
      assert.match(statsA, /^ratelimit\.service\.rate_limit\.edge\.remote_address\.total_hits: 5$/m);
      assert.match(statsA, /^ratelimit\.service\.rate_limit\.edge\.remote_address\.over_limit: 2$/m);
      assert.match(statsA, /^ratelimit\.service\.rate_limit\.edge\.remote_address\.within_limit: 3$/m);
      assert.match(statsA, /^ratelimit\.service\.rate_limit\.edge\.remote_address\.near_limit: 0$/m);
      const statsB = JSON.parse((await getText(b.httpPort!, "/stats?format=json")).text);
      const nb = Object.fromEntries(
        statsB.stats.filter((s: { name?: string }) => s.name).map((
          s: { name: string; value: number },
        ) => [s.name, s.value]),
      );
      assert.equal(nb["ratelimit.service.rate_limit.edge.remote_address.near_limit"], 1);
      assert.equal(nb["ratelimit.service.rate_limit.edge.remote_address.within_limit"], 2);
    });

    await t.step("bad requests: 400 on /json, INVALID_ARGUMENT and UNIMPLEMENTED on gRPC", async () => {
      assert.equal((await postJson(a.httpPort!, { domain: "", descriptors: [] })).status, 400);
      assert.equal((await getText(a.httpPort!, "/json")).status, 405);
      const g = await grpcCall(
        a.grpcPort!,
        SHOULD_RATE_LIMIT_PATH,
        encodeRateLimitRequest({ domain: "", descriptors: [], hitsAddend: 0 }),
      );
      assert.equal(g.status, 3);
      assert.match(g.message, /domain must not be empty/);
      assert.equal((await grpcCall(a.grpcPort!, "/nope.Svc/Method", new Uint8Array(0))).status, 12);
    });

    await t.step("Redis down: the closed replica denies, the open one allows; both recover", async () => {
      await redis.stop();
      await eventually(
        () => !a.service.backend.healthy() && !b.service.backend.healthy(),
        3000,
        "Redis loss noticed",
      );
      const hc = await getText(a.httpPort!, "/healthcheck");
      assert.equal(hc.status, 500);
      assert.match(hc.text, /unavailable/);
      assert.equal((await getText(b.httpPort!, "/healthcheck")).status, 200);
      const denied = await postJson(a.httpPort!, req("2.2.2.2"));
      assert.equal(denied.status, 429);
      const allowed = await postJson(b.httpPort!, req("2.2.2.2"));
      assert.equal(allowed.status, 200);
      assert.equal(allowed.body.statuses[0].code, "OK");
      // a descriptor without a limit needs no Redis
      assert.equal(
        (await postJson(a.httpPort!, {
          domain: "edge",
          descriptors: [{ entries: [{ key: "x", value: "y" }] }],
        })).status,
        200,
      );
      const sa = a.service.stats.snapshot().counters;
      assert.equal(sa["ratelimit.service.call.should_rate_limit.failure_mode_denied"], 1);
      assert.equal(sa["ratelimit.service.call.should_rate_limit.redis_error"], 1);
      assert.ok(sa["ratelimit.redis.disconnected"] >= 1);
      assert.equal(
        b.service.stats.snapshot().counters["ratelimit.service.call.should_rate_limit.failure_mode_allowed"],
        1,
      );
      await redis.restart();
      await eventually(
        () => a.service.backend.healthy() && b.service.backend.healthy(),
        5000,
        "Redis reconnect",
      );
      assert.equal((await getText(a.httpPort!, "/healthcheck")).status, 200);
      // the restarted Redis has no counts: a fresh window of 5
      const r = await postJson(a.httpPort!, req("1.1.1.1"));
      assert.equal(r.status, 200);
      assert.equal(r.body.statuses[0].limitRemaining, 4);
      assert.equal(a.service.stats.snapshot().counters["ratelimit.redis.connected"], 2);
    });

    await t.step("reload: a bad file keeps the old limits, a good one replaces them", async () => {
      await Deno.writeTextFile(
        limitsPath,
        LIMITS.replace("unit: hour, requests_per_unit: 5", "unit: fortnight, requests_per_unit: 5"),
      );
      await eventually(
        () => (a.service.stats.snapshot().counters["ratelimit.service.config_load_error"] ?? 0) >= 1,
        3000,
        "bad config rejected",
      );
      const cfg = JSON.parse((await getText(a.httpPort!, "/rlconfig")).text);
      assert.match(
        cfg.last_load_errors[0],
        /limits\.yaml:4:\d+: descriptors\[0\]\.rate_limit\.unit: Invalid rate limit unit "fortnight"/,
      );
      assert.equal(cfg.limits.length, 2);
      assert.equal((await getText(a.httpPort!, "/healthcheck")).status, 200);
      const still = await postJson(a.httpPort!, req("3.3.3.3"));
      assert.equal(still.body.statuses[0].currentLimit.requestsPerUnit, 5);
      await Deno.writeTextFile(limitsPath, LIMITS.replace("requests_per_unit: 5", "requests_per_unit: 50"));
      await eventually(() => a.service.config?.rules[0].requestsPerUnit === 50, 3000, "good config loaded");
      assert.equal(a.service.stats.snapshot().counters["ratelimit.service.config_load_success"], 2);
      const now = await postJson(a.httpPort!, req("3.3.3.3"));
      assert.equal(now.body.statuses[0].currentLimit.requestsPerUnit, 50);
      assert.equal(now.body.statuses[0].limitRemaining, 48);
    });
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ratelimit service without limits reports unhealthy", async () => {
  await using s = await startRatelimitService({
    limitsPath: "/nonexistent/limits.yaml",
    httpPort: 0,
    watchIntervalMs: 0,
  });
  assert.equal(s.loaded, false);
  const hc = await getText(s.httpPort!, "/healthcheck");
  assert.equal(hc.status, 500);
  assert.match(hc.text, /No rate limit configuration/);
  const r = await postJson(s.httpPort!, req("1.1.1.1"));
  assert.equal(r.status, 503);
});
