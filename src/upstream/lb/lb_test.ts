import assert from "node:assert/strict";
import { HostImpl } from "../host.ts";
import type { Host } from "../types.ts";
import { createLeastRequestLb } from "./least_request.ts";
import { seededRandom } from "./lb.ts";
import { MaglevLb } from "./maglev.ts";
import { createRandomLb } from "./random.ts";
import { RingHashLb } from "./ring_hash.ts";
import { createRoundRobinLb } from "./round_robin.ts";
import { xxhash64String } from "../../common/xxhash64.ts";

const mk = (n: number, weights?: number[]) =>
  Array.from({ length: n }, (_, i) => new HostImpl(`10.0.0.${i + 1}`, 80, { weight: weights?.[i] ?? 1 }));

/** Counts picks per host address over `n` calls. */
function tally(pick: () => Host | null, n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = pick()!;
    m.set(h.address, (m.get(h.address) ?? 0) + 1);
  }
  return m;
}

const keys = Array.from({ length: 20000 }, (_, i) => xxhash64String(`key-${i}`));

Deno.test("round robin", async (t) => {
  await t.step("equal weights rotate in order", () => {
    const hosts = mk(3);
    const lb = createRoundRobinLb(hosts);
    const seq = Array.from({ length: 7 }, () => lb.choose({}, 0)!.address);
    assert.deepEqual(seq, [
      "10.0.0.1",
      "10.0.0.2",
      "10.0.0.3",
      "10.0.0.1",
      "10.0.0.2",
      "10.0.0.3",
      "10.0.0.1",
    ]);
  });

  await t.step("weights honoured exactly in every cycle and interleaved", () => {
    const hosts = mk(3, [1, 2, 5]);
    const lb = createRoundRobinLb(hosts);
    for (let cycle = 0; cycle < 50; cycle++) {
      const m = tally(() => lb.choose({}, 0), 8);
      assert.deepEqual([m.get("10.0.0.1"), m.get("10.0.0.2"), m.get("10.0.0.3")], [1, 2, 5]);
    }
    // Smooth: the weight-5 host never gets more than 3 picks in a row.
    const seq = Array.from({ length: 80 }, () => lb.choose({}, 0)!.address).join(",");
    assert.ok(!seq.includes(Array(4).fill("10.0.0.3").join(",")), seq);
  });

  await t.step("weights with a common divisor and large values", () => {
    const lb = createRoundRobinLb(mk(2, [300, 100]));
    const m = tally(() => lb.choose({}, 0), 4000);
    assert.deepEqual([m.get("10.0.0.1"), m.get("10.0.0.2")], [3000, 1000]);
    const big = createRoundRobinLb(mk(2, [4294967295, 1431655765]));
    const b = tally(() => big.choose({}, 0), 4000);
    assert.deepEqual([b.get("10.0.0.1"), b.get("10.0.0.2")], [3000, 1000]);
  });

  await t.step("empty host list", () => {
    assert.equal(createRoundRobinLb([]).choose({}, 0), null);
  });
});

Deno.test("least request", async (t) => {
  await t.step("P2C avoids the busiest host", () => {
    const hosts = mk(3);
    hosts[0].activeRequests = 10;
    const lb = createLeastRequestLb(hosts, seededRandom(1), { choiceCount: 2 });
    const m = tally(() => lb.choose({}, 0), 9000);
    // The busy host wins only when both samples are it: about 1/9 of picks.
    assert.ok(m.get("10.0.0.1")! < 1300 && m.get("10.0.0.1")! > 700, `${m.get("10.0.0.1")}`);
    const many = createLeastRequestLb(hosts, seededRandom(2), { choiceCount: 12 });
    assert.ok((tally(() => many.choose({}, 0), 3000).get("10.0.0.1") ?? 0) < 5);
  });

  await t.step("unequal weights: proportional when idle, shifted by active requests", () => {
    const hosts = mk(2, [1, 3]);
    const lb = createLeastRequestLb(hosts, seededRandom(3));
    const m = tally(() => lb.choose({}, 0), 4000);
    assert.ok(Math.abs(m.get("10.0.0.2")! / 4000 - 0.75) < 0.02, JSON.stringify([...m]));
    hosts[1].activeRequests = 8; // effective weight 3/9 < 1/1
    const lb2 = createLeastRequestLb(hosts, seededRandom(3));
    const m2 = tally(() => lb2.choose({}, 0), 4000);
    assert.ok(m2.get("10.0.0.1")! > m2.get("10.0.0.2")!, JSON.stringify([...m2]));
  });
});

Deno.test("random: roughly uniform, ignores weights", () => {
  const lb = createRandomLb(mk(4, [1, 1, 1, 10]), seededRandom(9));
  const m = tally(() => lb.choose({}, 0), 40000);
  for (const v of m.values()) assert.ok(Math.abs(v - 10000) < 500, JSON.stringify([...m]));
  assert.equal(createRandomLb([], seededRandom(1)).choose({}, 0), null);
});

Deno.test("ring hash", async (t) => {
  await t.step("ring size and per-host entries follow weights", () => {
    const ring = new RingHashLb(mk(4), seededRandom(1));
    assert.equal(ring.size, 1024);
    assert.deepEqual(ring.entriesPerHost(), [256, 256, 256, 256]);
    const weighted = new RingHashLb(mk(3, [1, 2, 3]), seededRandom(1), { minimumRingSize: 60 });
    assert.deepEqual(weighted.entriesPerHost(), [10, 20, 30]);
    const capped = new RingHashLb(mk(3, [1, 2, 3]), seededRandom(1), {
      minimumRingSize: 1024,
      maximumRingSize: 600,
    });
    assert.deepEqual(capped.entriesPerHost(), [100, 200, 300]);
  });

  await t.step("lookup is the first entry at or after the hash (binary search vs brute force)", () => {
    const hosts = mk(5);
    const ring = new RingHashLb(hosts, seededRandom(1), { minimumRingSize: 50 });
    // Rebuild the sorted point list independently.
    const points: [bigint, string][] = [];
    for (const h of hosts) {
      for (let i = 0; i < 10; i++) points.push([xxhash64String(`${h.addressString}_${i}`), h.address]);
    }
    points.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const k of keys.slice(0, 2000)) {
      const want = (points.find((p) => p[0] >= k) ?? points[0])[1];
      assert.equal(ring.choose({ hash: k }, 0)!.address, want);
    }
    assert.equal(ring.choose({ hash: points[3][0] }, 0)!.address, points[3][1]);
    assert.equal(ring.choose({ hash: (1n << 64n) - 1n }, 0)!.address, points[0][1]);
  });

  await t.step("removing a host moves its keys and few others; balance is reasonable", () => {
    const hosts = mk(5);
    const before = new RingHashLb(hosts, seededRandom(1));
    const after = new RingHashLb(hosts.filter((_, i) => i !== 2), seededRandom(1));
    const counts = new Map<string, number>();
    let others = 0;
    let disrupted = 0;
    for (const k of keys) {
      const a = before.choose({ hash: k }, 0)!.address;
      const b = after.choose({ hash: k }, 0)!.address;
      counts.set(a, (counts.get(a) ?? 0) + 1);
      assert.notEqual(b, "10.0.0.3");
      if (a === "10.0.0.3") continue;
      others++;
      if (b !== a) disrupted++;
    }
    // The ring is renormalised (205 -> 256 entries per host), so a few other keys move too; a modulo
    // scheme would move about 80 %.
    assert.ok(disrupted / others < 0.15, `${disrupted}/${others}`);
    for (const v of counts.values()) assert.ok(v > 2800 && v < 5200, JSON.stringify([...counts]));
  });

  await t.step("no hash picks randomly", () => {
    const ring = new RingHashLb(mk(3), seededRandom(5));
    assert.equal(tally(() => ring.choose({}, 0), 300).size, 3);
  });
});

Deno.test("maglev", async (t) => {
  await t.step("table is fully populated and balanced, weights honoured", () => {
    const lb = new MaglevLb(mk(4), seededRandom(1), 65537);
    const slots = lb.slotsPerHost();
    assert.equal(slots.reduce((a, b) => a + b), 65537);
    for (const s of slots) assert.ok(Math.abs(s - 65537 / 4) <= 1, `${slots}`);
    assert.ok(!lb.table().includes(-1));
    const w = new MaglevLb(mk(2, [1, 3]), seededRandom(1), 65537).slotsPerHost();
    assert.ok(Math.abs(w[1] / 65537 - 0.75) < 0.001, `${w}`);
  });

  await t.step("lookup is table[hash % size] and stable", () => {
    const hosts = mk(3);
    const lb = new MaglevLb(hosts, seededRandom(1), 7);
    const table = lb.table();
    for (const k of keys.slice(0, 100)) {
      assert.equal(lb.choose({ hash: k }, 0), hosts[table[Number(k % 7n)]]);
    }
    const again = new MaglevLb(hosts, seededRandom(2), 7);
    assert.deepEqual(again.table(), table);
  });

  await t.step("removing a host moves few other keys", () => {
    const hosts = mk(10);
    const before = new MaglevLb(hosts, seededRandom(1));
    const after = new MaglevLb(hosts.filter((_, i) => i !== 4), seededRandom(1));
    let others = 0;
    let disrupted = 0;
    for (const k of keys) {
      const a = before.choose({ hash: k }, 0)!;
      if (a === hosts[4]) continue;
      others++;
      if (after.choose({ hash: k }, 0) !== a) disrupted++;
    }
    assert.ok(disrupted / others < 0.05, `${disrupted}/${others}`);
  });
});
