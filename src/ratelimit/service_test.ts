import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import { type CounterBackend, type IncrementBatch, MemoryBackend } from "./backend.ts";
import { LimitsConfig } from "./limits.ts";
import { parseLimitsText } from "./limits_file.ts";
import { decodeRateLimitResponse, encodeRateLimitRequest } from "./rls_proto.ts";
import { type FailureMode, RateLimitService } from "./service.ts";
import { Code, type RateLimitRequest, type RateLimitResponse, RateLimitServiceError, Unit } from "./types.ts";

const LIMITS = `
domain: edge
descriptors:
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 5 }
  - key: remote_address
    value: 10.0.0.1
    rate_limit: { unit: minute, requests_per_unit: 2, name: vip }
  - key: path
    value: /api*
    rate_limit: { unit: hour, requests_per_unit: 100 }
  - key: client
    descriptors:
      - key: path
        rate_limit: { unit: second, requests_per_unit: 10 }
  - key: user
    detailed_metric: true
    rate_limit: { unit: day, requests_per_unit: 1000 }
  - key: shadow
    shadow_mode: true
    rate_limit: { unit: second, requests_per_unit: 1 }
  - key: internal
    rate_limit: { unlimited: true }
  - key: override
    rate_limit: { unit: second, requests_per_unit: 100, replaces: [{ name: vip }] }
`;

function setup(opts: { backend?: CounterBackend; failureMode?: FailureMode; shadowMode?: boolean } = {}) {
  const clock = new ManualClock(1_700_000_000_000); // a whole minute: 1700000000 % 60 = 20
  const stats = new StatsStore();
  const backend = opts.backend ?? new MemoryBackend({ clock });
  const service = new RateLimitService({
    backend,
    stats,
    clock,
    failureMode: opts.failureMode,
    shadowMode: opts.shadowMode,
  });
  const parsed = parseLimitsText(LIMITS, "limits.yaml");
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  service.setConfig(new LimitsConfig([parsed], { stats }));
  const call = (entries: [string, string][][], hitsAddend = 0) =>
    service.shouldRateLimit({
      domain: "edge",
      descriptors: entries.map((e) => ({ entries: e.map(([key, value]) => ({ key, value })) })),
      hitsAddend,
    }) as RateLimitResponse;
  const stat = (name: string) => stats.snapshot().counters[`ratelimit.service.rate_limit.${name}`] ?? 0;
  return { clock, stats, backend, service, call, stat };
}

Deno.test("RateLimitService decisions", async (t) => {
  await t.step("most specific match wins; limits count per value; window resets", async () => {
    const { call, clock, backend, stat } = setup();
    for (let i = 0; i < 5; i++) {
      const r = call([[["remote_address", "1.2.3.4"]]]);
      assert.equal(r.overallCode, Code.OK);
      assert.equal(r.statuses[0].limitRemaining, 4 - i);
      assert.deepEqual(r.statuses[0].currentLimit, { name: "", requestsPerUnit: 5, unit: Unit.SECOND });
      assert.equal(r.statuses[0].durationUntilResetMs, 1000);
    }
    const over = call([[["remote_address", "1.2.3.4"]]]);
    assert.equal(over.overallCode, Code.OVER_LIMIT);
    assert.equal(over.statuses[0].code, Code.OVER_LIMIT);
    assert.equal(over.statuses[0].limitRemaining, 0);
    // another value has its own counter
    assert.equal(call([[["remote_address", "5.6.7.8"]]]).overallCode, Code.OK);
    // the exact value rule (2/minute) wins over the key-only rule
    const vip = call([[["remote_address", "10.0.0.1"]]]);
    assert.deepEqual(vip.statuses[0].currentLimit, { name: "vip", requestsPerUnit: 2, unit: Unit.MINUTE });
    assert.equal(vip.statuses[0].durationUntilResetMs, 40_000);
    call([[["remote_address", "10.0.0.1"]]]);
    assert.equal(call([[["remote_address", "10.0.0.1"]]]).overallCode, Code.OVER_LIMIT);
    clock.advance(1000);
    assert.equal(call([[["remote_address", "1.2.3.4"]]]).statuses[0].limitRemaining, 4);
    assert.equal(call([[["remote_address", "10.0.0.1"]]]).overallCode, Code.OVER_LIMIT);
    clock.advance(40_000);
    assert.equal(call([[["remote_address", "10.0.0.1"]]]).overallCode, Code.OK);
    assert.equal(stat("edge.remote_address.total_hits"), 8);
    assert.equal(stat("edge.remote_address.over_limit"), 1);
    assert.equal(stat("edge.remote_address.within_limit"), 7);
    assert.equal(stat("edge.remote_address_10.0.0.1.over_limit"), 2);
    (backend as MemoryBackend).sweep();
    assert.equal((backend as MemoryBackend).size, 1); // only 10.0.0.1's minute window is still live
    await backend.close();
  });

  await t.step("near_limit at 80 %, over_limit split with hits_addend", async () => {
    const { call, stat, backend } = setup();
    // limit 5 -> near threshold 4
    call([[["remote_address", "a"]]], 3); // 3: within
    assert.equal(stat("edge.remote_address.near_limit"), 0);
    call([[["remote_address", "a"]]], 1); // 4: within, not above 4
    assert.equal(stat("edge.remote_address.near_limit"), 0);
    call([[["remote_address", "a"]]], 1); // 5: near
    assert.equal(stat("edge.remote_address.near_limit"), 1);
    const r = call([[["remote_address", "a"]]], 3); // 5 -> 8: 3 over
    assert.equal(r.overallCode, Code.OVER_LIMIT);
    assert.equal(stat("edge.remote_address.over_limit"), 3);
    assert.equal(stat("edge.remote_address.within_limit"), 5);
    assert.equal(stat("edge.remote_address.total_hits"), 8);
    // straddling: fresh key b, 0 -> 7 with hits 7: over 2, near 5-4=1
    call([[["remote_address", "b"]]], 7);
    assert.equal(stat("edge.remote_address.over_limit"), 5);
    assert.equal(stat("edge.remote_address.near_limit"), 2);
    await backend.close();
  });

  await t.step("nested descriptors, depth must match, wildcard prefix, unknown keys", async () => {
    const { call, backend } = setup();
    const nested = call([[["client", "c1"], ["path", "/x"]]]);
    assert.deepEqual(nested.statuses[0].currentLimit, { name: "", requestsPerUnit: 10, unit: Unit.SECOND });
    assert.equal(call([[["client", "c1"]]]).statuses[0].currentLimit, undefined); // no rule at depth 1
    assert.equal(call([[["remote_address", "x"], ["extra", "y"]]]).statuses[0].currentLimit, undefined);
    assert.equal(call([[["path", "/api/v1"]]]).statuses[0].currentLimit?.requestsPerUnit, 100);
    assert.equal(call([[["path", "/other"]]]).statuses[0].currentLimit, undefined);
    assert.deepEqual(call([[["nope", "x"]]]).statuses[0], { code: Code.OK, limitRemaining: 0 });
    await backend.close();
  });

  await t.step("shadow mode, unlimited, replaces, detailed metric", async () => {
    const { call, stat, backend, stats } = setup();
    call([[["shadow", "s"]]]);
    const sh = call([[["shadow", "s"]]]);
    assert.equal(sh.overallCode, Code.OK);
    assert.equal(sh.statuses[0].code, Code.OK);
    assert.equal(stat("edge.shadow.shadow_mode"), 1);
    assert.equal(stat("edge.shadow.over_limit"), 1);
    assert.deepEqual(call([[["internal", "i"]]]).statuses[0], { code: Code.OK, limitRemaining: 4294967295 });
    // "override" replaces the rule named vip: vip is not applied (nor counted) in that request
    for (let i = 0; i < 3; i++) {
      const r = call([[["remote_address", "10.0.0.1"]], [["override", "o"]]]);
      assert.equal(r.overallCode, Code.OK);
      assert.deepEqual(r.statuses[0], { code: Code.OK, limitRemaining: 0 });
      assert.equal(r.statuses[1].currentLimit?.requestsPerUnit, 100);
    }
    assert.equal(stat("edge.remote_address_10.0.0.1.total_hits"), 0);
    call([[["user", "alice"]]]);
    call([[["user", "bob"]]], 2);
    assert.equal(stat("edge.user_alice.total_hits"), 1);
    assert.equal(stat("edge.user_bob.total_hits"), 2);
    assert.equal(stats.snapshot().counters["ratelimit.service.rate_limit.edge.user.total_hits"], 0);
    await backend.close();
  });

  await t.step("hits_addend per descriptor (0 only reads) and limit overrides", async () => {
    const { service, backend, stat } = setup();
    const req = (d: RateLimitRequest["descriptors"]) =>
      service.shouldRateLimit({ domain: "edge", descriptors: d, hitsAddend: 2 }) as RateLimitResponse;
    const e = [{ key: "remote_address", value: "h" }];
    assert.equal(req([{ entries: e }]).statuses[0].limitRemaining, 3);
    assert.equal(req([{ entries: e, hitsAddend: 0 }]).statuses[0].limitRemaining, 3);
    assert.equal(req([{ entries: e, hitsAddend: 3 }]).statuses[0].limitRemaining, 0);
    const o = req([{
      entries: [{ key: "anything", value: "v" }],
      limit: { requestsPerUnit: 3, unit: Unit.MINUTE },
    }]);
    assert.deepEqual(o.statuses[0].currentLimit, { name: "", requestsPerUnit: 3, unit: Unit.MINUTE });
    assert.equal(o.statuses[0].limitRemaining, 1);
    assert.equal(stat("edge.anything_v.total_hits"), 2);
    const bad = req([{ entries: e, limit: { requestsPerUnit: 3, unit: 99 } }]);
    assert.equal(bad.statuses[0].currentLimit, undefined);
    await backend.close();
  });

  await t.step("unknown domain, invalid requests and no config", async () => {
    const { service, backend, stats } = setup();
    const r = service.shouldRateLimit({
      domain: "other",
      descriptors: [{ entries: [{ key: "a", value: "b" }] }],
      hitsAddend: 0,
    });
    assert.deepEqual((r as RateLimitResponse).statuses, [{ code: Code.OK, limitRemaining: 0 }]);
    assert.equal(stats.snapshot().counters["ratelimit.service.rate_limit.other.domain_not_found"], 1);
    assert.throws(
      () => service.shouldRateLimit({ domain: "", descriptors: [], hitsAddend: 0 }),
      /domain must not be empty/,
    );
    assert.throws(
      () => service.shouldRateLimit({ domain: "edge", descriptors: [], hitsAddend: 0 }),
      /descriptor list/,
    );
    await assert.rejects(service.handleShouldRateLimit(new Uint8Array([0x0a, 0x05])), RateLimitServiceError);
    const empty = new RateLimitService({ backend });
    assert.throws(
      () => empty.shouldRateLimit({ domain: "edge", descriptors: [{ entries: [] }], hitsAddend: 0 }),
      (e: unknown) => e instanceof RateLimitServiceError && e.grpcStatus === 14,
    );
    assert.equal(empty.health().ok, false);
    assert.equal(service.health().ok, true);
    await backend.close();
  });

  await t.step("global shadow mode answers OK and counts", async () => {
    const { call, stats, backend } = setup({ shadowMode: true });
    call([[["shadow", "x"]], [["vip", "x"]]]);
    const r = call([[["remote_address", "10.0.0.1"]]], 3);
    assert.equal(r.statuses[0].code, Code.OVER_LIMIT);
    assert.equal(r.overallCode, Code.OK);
    assert.equal(stats.snapshot().counters["ratelimit.service.global_shadow_mode"], 1);
    await backend.close();
  });

  await t.step("store failure: open allows, closed denies (shadow rules still allowed)", async () => {
    const failing: CounterBackend = {
      kind: "broken",
      increment(_b: IncrementBatch): Promise<number[]> {
        return Promise.reject(new Error("down"));
      },
      healthy: () => false,
      close: () => Promise.resolve(),
    };
    for (const mode of ["open", "closed"] as const) {
      const { service, stats } = setup({ backend: failing, failureMode: mode });
      const r = await service.shouldRateLimit({
        domain: "edge",
        descriptors: [
          { entries: [{ key: "remote_address", value: "z" }] },
          { entries: [{ key: "shadow", value: "z" }] },
          { entries: [{ key: "nope", value: "z" }] },
        ],
        hitsAddend: 0,
      });
      assert.deepEqual(r.statuses.map((s) => s.code), [
        mode === "open" ? Code.OK : Code.OVER_LIMIT,
        Code.OK,
        Code.OK,
      ]);
      assert.equal(r.overallCode, mode === "open" ? Code.OK : Code.OVER_LIMIT);
      const c = stats.snapshot().counters;
      assert.equal(c["ratelimit.service.call.should_rate_limit.redis_error"], 1);
      assert.equal(
        c[`ratelimit.service.call.should_rate_limit.failure_mode_${mode === "open" ? "allowed" : "denied"}`],
        1,
      );
      assert.equal(service.health().ok, mode === "open");
    }
  });

  await t.step("bytes in, bytes out", async () => {
    const { service, backend } = setup();
    const bytes = encodeRateLimitRequest({
      domain: "edge",
      descriptors: [{ entries: [{ key: "remote_address", value: "q" }] }],
      hitsAddend: 6,
    });
    const res = decodeRateLimitResponse(await service.handleShouldRateLimit(bytes));
    assert.equal(res.overallCode, Code.OVER_LIMIT);
    assert.equal(res.statuses[0].durationUntilResetMs, 1000);
    await backend.close();
  });
});
