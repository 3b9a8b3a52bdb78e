import assert from "node:assert/strict";
import { HostImpl } from "../host.ts";
import { seededRandom } from "./lb.ts";
import { PriorityLb, priorityLoad } from "./priority.ts";
import { createRoundRobinLb } from "./round_robin.ts";

/** `n` hosts of `priority` (locality `loc`, weight `lw`), the first `healthy` healthy, then `degraded` degraded. */
function level(priority: number, n: number, healthy: number, degraded = 0, loc = "", lw = 0): HostImpl[] {
  return Array.from({ length: n }, (_, i) => {
    const h = new HostImpl(`10.${priority}.${loc.length}.${i}`, 80, {
      priority,
      locality: loc,
      localityWeight: lw,
    });
    h.setEdsHealth(i < healthy ? "HEALTHY" : i < healthy + degraded ? "DEGRADED" : "UNHEALTHY");
    return h;
  });
}

const opts = (
  extra: Partial<{ overprovisioning: number; panicThreshold: number; localityWeighted: boolean }> = {},
) => ({
  build: createRoundRobinLb,
  overprovisioning: 140,
  panicThreshold: 50,
  localityWeighted: false,
  random: seededRandom(3),
  ...extra,
});

/** Share of `n` picks per priority level. */
function shares(lb: PriorityLb, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const h = lb.choose({}, 0) as HostImpl | null;
    if (h !== null) out[h.priority] = (out[h.priority] ?? 0) + 1;
  }
  return out.map((c) => c ?? 0);
}

Deno.test("priority load (Envoy's priority levels doc, overprovisioning 1.4)", () => {
  // P=0 healthy % -> traffic to P=0 / P=1 with P=1 fully healthy
  const table: [number, number][] = [[100, 100], [72, 100], [71, 99], [50, 70], [25, 35], [0, 0]];
  for (const [pct, p0] of table) {
    const l = priorityLoad(
      [{ total: 100, healthy: pct, degraded: 0 }, { total: 100, healthy: 100, degraded: 0 }],
      140,
      0,
    );
    assert.deepEqual(l.healthy, [p0, 100 - p0], `P0 ${pct}% healthy`);
  }
  // Both levels partly healthy: the rest of P0's load spills to P1 up to its health, then normalization.
  const l = priorityLoad(
    [{ total: 100, healthy: 20, degraded: 0 }, { total: 100, healthy: 20, degraded: 0 }],
    140,
    0,
  );
  assert.deepEqual(l.healthy, [50, 50]); // health 28 + 28 = 56 < 100: normalized
  // overprovisioning_factor 100: no headroom
  assert.deepEqual(
    priorityLoad([{ total: 10, healthy: 9, degraded: 0 }, { total: 10, healthy: 10, degraded: 0 }], 100, 0)
      .healthy,
    [90, 10],
  );
});

Deno.test("degraded hosts take load only after healthy ones (Envoy's worked example)", () => {
  const l = priorityLoad(
    [{ total: 100, healthy: 10, degraded: 20 }, { total: 100, healthy: 20, degraded: 10 }, {
      total: 100,
      healthy: 10,
      degraded: 0,
    }],
    100,
    0,
  );
  assert.deepEqual(l.healthy, [16, 28, 14]);
  assert.deepEqual(l.degraded, [28, 14, 0]);
  // all healthy P0: degraded hosts get nothing
  assert.deepEqual(priorityLoad([{ total: 10, healthy: 8, degraded: 2 }], 140, 50).degraded, [0]);
});

Deno.test("panic per level and total panic", () => {
  // P0 20 % usable is in panic (threshold 50) but still has load; P1 (50 %) is not; together they are short of
  // full availability (28 + 70 = 98), else no level would panic (see the test above)
  const p = priorityLoad(
    [{ total: 10, healthy: 2, degraded: 0 }, { total: 10, healthy: 5, degraded: 0 }],
    140,
    50,
  );
  assert.deepEqual(p.panic, [true, false]);
  assert.deepEqual(p.healthy, [29, 71]);
  // every level in panic: load follows host counts
  const t = priorityLoad(
    [{ total: 10, healthy: 1, degraded: 0 }, { total: 30, healthy: 0, degraded: 0 }],
    140,
    50,
  );
  assert.deepEqual(t.panic, [true, true]);
  assert.deepEqual(t.healthy, [25, 75]);
  // nothing usable and panic disabled: P0 takes the load and finds nobody
  const z = priorityLoad([{ total: 2, healthy: 0, degraded: 0 }], 140, 0);
  assert.deepEqual([z.healthy, z.panic], [[100], [false]]);
  const lb = new PriorityLb(level(0, 2, 0), opts({ panicThreshold: 0 }));
  assert.equal(lb.choose({}, 0), null);
});

Deno.test("PriorityLb spreads picks by priority load and prefers healthy over degraded", () => {
  const lb = new PriorityLb([...level(0, 10, 5), ...level(1, 10, 10)], opts());
  assert.deepEqual(lb.load.healthy, [70, 30]);
  const s = shares(lb, 10_000);
  assert.ok(Math.abs(s[0] - 7000) < 300 && Math.abs(s[1] - 3000) < 300, String(s));
  // a hash picks the level deterministically
  const h1 = lb.choose({ hash: 42n }, 0) as HostImpl;
  assert.equal(h1.priority, 0); // 42 % 100 + 1 = 43 <= 70
  assert.equal((lb.choose({ hash: 99n }, 0) as HostImpl).priority, 1);
  // one level with every host healthy: the fast path, nothing of P1
  const all = new PriorityLb([...level(0, 4, 4), ...level(1, 4, 4)], opts());
  assert.deepEqual(shares(all, 100), [100]);
  // degraded only when healthy capacity lacks
  const deg = new PriorityLb(level(0, 10, 0, 10), opts());
  assert.deepEqual(deg.load.degraded, [100]);
  assert.ok(shares(deg, 20)[0] === 20);
  assert.equal(deg.lastPanic, false);
});

Deno.test("locality weighted: weight x availability with overprovisioning (Envoy's locality doc)", () => {
  // X weight 1 with half its hosts healthy, Y weight 2 fully healthy: 0.7 / 2.7 of traffic to X
  const hosts = [...level(0, 10, 5, 0, "r/x/", 1), ...level(0, 10, 10, 0, "r/y/", 2)];
  const lb = new PriorityLb(hosts, opts({ localityWeighted: true }));
  let x = 0;
  for (let i = 0; i < 2700; i++) if ((lb.choose({}, 0) as HostImpl).locality === "r/x/") x++;
  assert.equal(x, 700);
  // X 80 % healthy: not reduced (80 x 1.4 >= 100)
  const full = new PriorityLb(
    [...level(0, 10, 8, 0, "r/x/", 1), ...level(0, 10, 10, 0, "r/y/", 2)],
    opts({ localityWeighted: true }),
  );
  let fx = 0;
  for (let i = 0; i < 300; i++) if ((full.choose({}, 0) as HostImpl).locality === "r/x/") fx++;
  assert.equal(fx, 100);
  // a locality without weight gets nothing; none with weight: plain LB over all healthy hosts
  const noW = new PriorityLb(
    [...level(0, 2, 2, 0, "r/x/", 0), ...level(0, 2, 2, 0, "r/y/", 1)],
    opts({ localityWeighted: true }),
  );
  for (let i = 0; i < 10; i++) assert.equal((noW.choose({}, 0) as HostImpl).locality, "r/y/");
  const none = new PriorityLb(
    [...level(0, 2, 2, 0, "r/x/"), ...level(0, 2, 2, 0, "r/y/")],
    opts({ localityWeighted: true }),
  );
  assert.equal(new Set(Array.from({ length: 8 }, () => (none.choose({}, 0) as HostImpl).locality)).size, 2);
});

Deno.test("no level panics while the levels together are fully available (Envoy's recalculatePerPriorityPanic)", () => {
  // P0 4 of 10 healthy (40 % < the 50 % threshold), P1 all healthy: normalized total availability is 100
  const l = priorityLoad(
    [{ total: 10, healthy: 4, degraded: 0 }, { total: 10, healthy: 10, degraded: 0 }],
    140,
    50,
  );
  assert.deepEqual(l.panic, [false, false]);
  assert.deepEqual(l.healthy, [56, 44]);
  // with P1 gone as well, the levels are short of capacity: P0 panics
  const short = priorityLoad(
    [{ total: 10, healthy: 4, degraded: 0 }, { total: 10, healthy: 0, degraded: 0 }],
    140,
    50,
  );
  assert.equal(short.panic[0], true);
});
