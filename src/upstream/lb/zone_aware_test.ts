import assert from "node:assert/strict";
import { HostImpl } from "../host.ts";
import { lbBuilder } from "./factory.ts";
import { type Random, seededRandom } from "./lb.ts";
import { PriorityLb, type PriorityLbOptions } from "./priority.ts";
import { createRoundRobinLb } from "./round_robin.ts";
import { clusterSchema } from "../config.ts";
import {
  createZoneStats,
  localityPercentages,
  pickLocality,
  type ZoneAwareConfig,
  zoneRouting,
  type ZoneStats,
} from "./zone_aware.ts";

const key = (zone: string) => `/${zone}/`;

/** Hosts per zone: `{a: 3, b: 2}`; `unhealthy` of each zone's hosts (from its end) are unhealthy. */
function hosts(perZone: Record<string, number>, unhealthy: Record<string, number> = {}, net = 1): HostImpl[] {
  const out: HostImpl[] = [];
  let z = 0;
  for (const [zone, n] of Object.entries(perZone)) {
    z++;
    for (let i = 0; i < n; i++) {
      const h = new HostImpl(`10.${net}.${z}.${i}`, 80, { locality: key(zone) });
      if (i >= n - (unhealthy[zone] ?? 0)) h.setEdsHealth("UNHEALTHY");
      out.push(h);
    }
  }
  return out;
}

function config(extra: Partial<ZoneAwareConfig> = {}): ZoneAwareConfig {
  return {
    localLocality: key("a"),
    routingEnabled: 100,
    minClusterSize: 6,
    failTrafficOnPanic: false,
    stats: createZoneStats(),
    ...extra,
  };
}

/** A random source replaying `values` (then 0). */
function scripted(values: number[]): Random {
  let i = 0;
  return () => values[i++] ?? 0;
}

/** A deterministic random source (seeded PRNG: successive draws are independent, unlike a low-discrepancy one). */
const even = (): Random => seededRandom(11);

/** Asserts every zone's share is within 1 point of `expected` (percent, seeded random draws). */
function near(actual: Record<string, number>, expected: Record<string, number>, what = ""): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), what);
  for (const [z, v] of Object.entries(expected)) {
    assert.ok(Math.abs(actual[z] - v) <= 1, `${what} zone ${z}: ${actual[z]} % (expected ${v} %)`);
  }
}

function lbOptions(cfg: ZoneAwareConfig, local: HostImpl[] | null, extra: Partial<PriorityLbOptions> = {}) {
  return {
    build: createRoundRobinLb,
    overprovisioning: 140,
    panicThreshold: 50,
    localityWeighted: false,
    random: even(),
    zoneAware: { config: cfg, local },
    ...extra,
  };
}

/** Share (percent, rounded) of `n` picks per zone. */
function zoneShares(lb: PriorityLb, n = 10000): Record<string, number> {
  const count: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const h = lb.choose({}, 0) as HostImpl | null;
    const z = h === null ? "none" : h.locality.split("/")[1];
    count[z] = (count[z] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(count).map(([z, c]) => [z, Math.round(100 * c / n)]));
}

const statValues = (s: ZoneStats) =>
  Object.fromEntries(Object.entries(s).filter(([, c]) => c.value > 0).map(([k, c]) => [k, c.value]));

Deno.test("locality percentages (1/100 of a percent, as Envoy)", () => {
  const p = localityPercentages(
    ["a", "b", "c"],
    new Map([["a", 2], ["b", 2], ["c", 1]]),
    new Map([["a", 2], ["b", 4], ["c", 2]]),
  );
  assert.deepEqual(p, [
    { local: 4000, upstream: 2500 },
    { local: 4000, upstream: 5000 },
    { local: 2000, upstream: 2500 },
  ]);
  // an upstream locality without hosts counts 0/0 whatever its callers
  assert.deepEqual(localityPercentages(["a"], new Map([["a", 1]]), new Map([["a", 0]])), [{
    local: 0,
    upstream: 0,
  }]);
});

Deno.test("zone routing: local 50/50, upstream 50/50: all picks stay in the local zone", () => {
  const cfg = config();
  const z = zoneRouting(hosts({ a: 3, b: 3 }), hosts({ a: 2, b: 2 }, {}, 2), cfg, 50);
  assert.equal(z.state, "direct");
  assert.deepEqual(z.localities, [key("a"), key("b")]);
  const lb = new PriorityLb(hosts({ a: 3, b: 3 }), lbOptions(cfg, hosts({ a: 2, b: 2 }, {}, 2)));
  assert.deepEqual(zoneShares(lb, 1000), { a: 100 });
  assert.equal(cfg.stats.lb_zone_routing_all_directly.value, 1000);
  // the upstream has more of its hosts in our zone than the callers: still all direct
  const cfg2 = config();
  const lb2 = new PriorityLb(hosts({ a: 4, b: 2 }), lbOptions(cfg2, hosts({ a: 1, b: 1 }, {}, 2)));
  assert.deepEqual(zoneShares(lb2, 100), { a: 100 });
});

Deno.test("zone routing: upstream skewed away from our zone: residual routing as Envoy computes it", () => {
  // Envoy's example: callers 40/40/20 %, upstream 25/50/25 %: 25/40 of our picks stay, the rest goes to the
  // zones with capacity left in proportion to it (b: 50-40 = 10, c: 25-20 = 5).
  const cfg = config();
  const up = hosts({ a: 2, b: 4, c: 2 });
  const local = hosts({ a: 2, b: 2, c: 1 }, {}, 2);
  const z = zoneRouting(up, local, cfg, 50);
  assert.equal(z.state, "residual");
  assert.equal(z.localPercentToRoute, 6250);
  assert.deepEqual(z.residual, [0, 1000, 1500]);
  // deterministic picks: random 0.62 -> 6200 < 6250 stays local; 0.63 goes cross zone, then the residual
  // draw 0.5 -> 750 < 1000 is b, 0.7 -> 1050 >= 1000 is c
  const stats = cfg.stats;
  assert.equal(pickLocality(z, stats, scripted([0.62])), 0);
  assert.equal(pickLocality(z, stats, scripted([0.63, 0.5])), 1);
  assert.equal(pickLocality(z, stats, scripted([0.63, 0.7])), 2);
  assert.deepEqual(statValues(stats), {
    lb_recalculate_zone_structures: 1,
    lb_zone_routing_sampled: 1,
    lb_zone_routing_cross_zone: 2,
  });
  // over many picks: a 62.5 %, b 37.5 x 2/3 = 25 %, c 12.5 %
  const lb = new PriorityLb(up, lbOptions(config(), local));
  near(zoneShares(lb, 20000), { a: 62.5, b: 25, c: 12.5 });

  // two zones, callers 50/50, upstream 25/75: half of our picks stay (which keeps every upstream host even)
  const lb2 = new PriorityLb(hosts({ a: 2, b: 6 }), lbOptions(config(), hosts({ a: 2, b: 2 }, {}, 2)));
  assert.equal(lb2.zone?.localPercentToRoute, 5000);
  near(zoneShares(lb2, 10000), { a: 50, b: 50 });
});

Deno.test("zone routing: no upstream host in our zone sends by residual capacity only", () => {
  const z = zoneRouting(hosts({ b: 3, c: 3 }), hosts({ a: 2, b: 1, c: 1 }, {}, 2), config(), 50);
  assert.equal(z.state, "residual");
  assert.equal(z.hasLocal, false);
  assert.equal(z.localPercentToRoute, 0);
  assert.deepEqual(z.residual, [2500, 5000]); // b: 5000-2500, c: 5000-2500
});

Deno.test("zone routing: preconditions (Envoy's early exits and their stats)", () => {
  // one upstream locality, or one local locality: nothing to decide, no stat
  let cfg = config();
  assert.equal(zoneRouting(hosts({ a: 6 }), hosts({ a: 1, b: 1 }, {}, 2), cfg, 50).state, "none");
  assert.equal(zoneRouting(hosts({ a: 3, b: 3 }), hosts({ a: 2 }, {}, 2), cfg, 50).state, "none");
  assert.equal(zoneRouting(hosts({ a: 3, b: 3 }), null, cfg, 50).state, "none");
  assert.deepEqual(statValues(cfg.stats), { lb_recalculate_zone_structures: 3 });
  // the local cluster has no host in our zone
  cfg = config();
  assert.equal(zoneRouting(hosts({ a: 3, b: 3 }), hosts({ b: 1, c: 1 }, {}, 2), cfg, 50).state, "none");
  assert.equal(cfg.stats.lb_local_cluster_not_ok.value, 1);
  // fewer healthy upstream hosts than min_cluster_size (6 by default)
  cfg = config();
  assert.equal(
    zoneRouting(hosts({ a: 3, b: 3 }, { b: 1 }), hosts({ a: 1, b: 1 }, {}, 2), cfg, 50).state,
    "none",
  );
  assert.equal(cfg.stats.lb_zone_cluster_too_small.value, 1);
  cfg = config({ minClusterSize: 2 });
  assert.equal(zoneRouting(hosts({ a: 1, b: 1 }), hosts({ a: 1, b: 1 }, {}, 2), cfg, 50).state, "direct");
  // only healthy upstream hosts count: zone a's 3 hosts of which 2 are down make it 1 of 4 healthy
  const z = zoneRouting(
    hosts({ a: 3, b: 3 }, { a: 2 }),
    hosts({ a: 1, b: 1 }, {}, 2),
    config({ minClusterSize: 4 }),
    50,
  );
  assert.equal(z.state, "residual");
  assert.equal(z.localPercentToRoute, 5000); // 25 % upstream / 50 % callers
});

Deno.test("zone routing: routing_enabled, local panic and fail_traffic_on_panic", () => {
  const up = hosts({ a: 3, b: 3 });
  const local = hosts({ a: 2, b: 2 }, {}, 2);
  // routing_enabled 0: plain round robin over both zones
  let lb = new PriorityLb(up, lbOptions(config({ routingEnabled: 0 }), local));
  assert.deepEqual(zoneShares(lb, 600), { a: 50, b: 50 });
  // routing_enabled 30: 30 % of picks consider zones (all of those stay), the rest round-robin
  lb = new PriorityLb(up, lbOptions(config({ routingEnabled: 30 }), local));
  near(zoneShares(lb, 20000), { a: 65, b: 35 });

  // the local cluster in panic (3 of 4 down, threshold 50 %): each pick counts lb_local_cluster_not_ok
  const panicking = hosts({ a: 2, b: 2 }, { a: 1, b: 2 }, 2);
  let cfg = config();
  lb = new PriorityLb(up, lbOptions(cfg, panicking));
  assert.deepEqual(zoneShares(lb, 600), { a: 50, b: 50 });
  assert.equal(cfg.stats.lb_local_cluster_not_ok.value, 600);
  cfg = config({ failTrafficOnPanic: true });
  lb = new PriorityLb(up, lbOptions(cfg, panicking));
  assert.deepEqual(zoneShares(lb, 10), { none: 100 });

  // fail_traffic_on_panic: an upstream level in panic yields no host (with or without zone routing)
  const down = hosts({ a: 3, b: 3 }, { a: 3, b: 2 });
  lb = new PriorityLb(down, { ...lbOptions(config(), local), failTrafficOnPanic: true });
  assert.equal(lb.choose({}, 0), null);
  assert.equal(lb.lastPanic, true);
  lb = new PriorityLb(down, { ...lbOptions(config(), local), zoneAware: null, failTrafficOnPanic: true });
  assert.equal(lb.choose({}, 0), null);
  lb = new PriorityLb(down, { ...lbOptions(config(), local), zoneAware: null });
  assert.notEqual(lb.choose({}, 0), null); // panic without it: all hosts
});

Deno.test("zone routing: only priority 0; locality-weighted LB ignores it", () => {
  const up = [...hosts({ a: 3, b: 3 }, { a: 3, b: 3 })];
  const p1 = hosts({ b: 6 }, {}, 3).map((h) =>
    new HostImpl(h.address, h.port, { locality: h.locality, priority: 1 })
  );
  const cfg = config();
  const lb = new PriorityLb([...up, ...p1], lbOptions(cfg, hosts({ a: 1, b: 1 }, {}, 2)));
  assert.deepEqual(zoneShares(lb, 100), { b: 100 }); // P0 down: P1 serves, no zone logic there
  assert.equal(cfg.stats.lb_zone_cluster_too_small.value, 1); // P0 has no healthy host

  const lw = new PriorityLb(
    hosts({ a: 3, b: 3 }),
    lbOptions(config(), hosts({ a: 1, b: 1 }, {}, 2), { localityWeighted: true }),
  );
  assert.equal(lw.zone, null);
});

Deno.test("zone routing with LEAST_REQUEST and RANDOM", () => {
  for (const lb_policy of ["LEAST_REQUEST", "RANDOM"]) {
    const c = clusterSchema.parse({ name: "x", lb_policy });
    const cfg = config();
    const random = even();
    const lb = new PriorityLb(
      hosts({ a: 3, b: 3 }),
      lbOptions(cfg, hosts({ a: 1, b: 1 }, {}, 2), { build: lbBuilder(c, random), random }),
    );
    assert.deepEqual(zoneShares(lb, 500), { a: 100 }, lb_policy);
  }
});
