import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import type { ClusterImpl } from "./cluster.ts";
import { createClusterManager } from "./cluster_manager.ts";
import { clusterSchema } from "./config.ts";
import { type ResolvedAddress, type Resolver, selectFamily, systemResolver } from "./dns.ts";

/** Scripted DNS: answers per name (an Error rejects); a name may be held until `release`. */
class FakeResolver implements Resolver {
  answers = new Map<string, ResolvedAddress[] | Error>();
  calls: string[] = [];
  #held = new Map<string, () => void>();
  hold = new Set<string>();
  async lookup(name: string): Promise<ResolvedAddress[]> {
    this.calls.push(name);
    if (this.hold.has(name)) await new Promise<void>((r) => this.#held.set(name, r));
    const a = this.answers.get(name);
    if (a === undefined) throw new Error(`ENOTFOUND ${name}`);
    if (a instanceof Error) throw a;
    return a;
  }
  release(name: string): void {
    this.hold.delete(name);
    this.#held.get(name)?.();
  }
  set(name: string, ...addrs: string[]): void {
    this.answers.set(name, addrs.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })));
  }
}

const ep = (address: string, port = 80, extra: Record<string, unknown> = {}) => ({
  endpoint: { address: { socket_address: { address, port_value: port } } },
  ...extra,
});

const tick = () => new Promise((r) => setTimeout(r, 0));

function make(type: string, endpoints: unknown[], resolver: Resolver, extra: Record<string, unknown> = {}) {
  const stats = new StatsStore();
  const clock = new ManualClock();
  const config = clusterSchema.parse({
    name: "d",
    type,
    load_assignment: { endpoints: [{ lb_endpoints: endpoints }] },
    ...extra,
  });
  const cm = createClusterManager([config], { stats, clock, resolver });
  const cluster = cm.get("d") as ClusterImpl;
  const v = (n: string) =>
    stats.gauges.get(`cluster.d.${n}`)?.value ?? stats.counters.get(`cluster.d.${n}`)?.value;
  const addrs = () => cluster.hosts().map((h) => h.addressString);
  return { cm, cluster, clock, v, addrs };
}

Deno.test("selectFamily", () => {
  const r = (...a: string[]) =>
    a.map((address) => ({ address, family: (address.includes(":") ? 6 : 4) as 4 | 6 }));
  const mixed = r("10.0.0.1", "::1", "10.0.0.2", "10.0.0.1", "::2");
  assert.deepEqual(selectFamily(mixed, "V4_ONLY"), ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(selectFamily(mixed, "V6_ONLY"), ["::1", "::2"]);
  assert.deepEqual(selectFamily(mixed, "AUTO"), ["::1", "::2"]);
  assert.deepEqual(selectFamily(r("10.0.0.1"), "AUTO"), ["10.0.0.1"]);
  assert.deepEqual(selectFamily(mixed, "V4_PREFERRED"), ["10.0.0.1", "10.0.0.2"]);
  assert.deepEqual(selectFamily(r("::1"), "V4_PREFERRED"), ["::1"]);
  assert.deepEqual(selectFamily(mixed, "ALL"), ["10.0.0.1", "::1", "10.0.0.2", "::2"]);
});

Deno.test("STRICT_DNS", async (t) => {
  await t.step("initialize waits for the first resolution; all addresses become hosts", async () => {
    const dns = new FakeResolver();
    dns.set("a.test", "10.0.0.1", "10.0.0.2");
    dns.set("b.test", "10.0.1.1");
    dns.hold.add("b.test");
    const { cm, cluster, v, addrs } = make("STRICT_DNS", [
      ep("a.test", 80, { load_balancing_weight: 2 }),
      ep("b.test", 81),
    ], dns);
    assert.equal(cluster.hosts().length, 0);
    let ready = false;
    const init = cm.initialize().then(() => ready = true);
    assert.equal(cm.initialize(), cm.initialize());
    await tick();
    assert.equal(ready, false);
    dns.release("b.test");
    await init;
    assert.deepEqual(addrs(), ["10.0.0.1:80", "10.0.0.2:80", "10.0.1.1:81"]);
    assert.equal(cluster.hosts()[0].hostname, "a.test");
    assert.equal(cluster.hosts()[0].weight, 2);
    assert.equal(v("membership_total"), 3);
    assert.equal(v("membership_healthy"), 3);
    assert.equal(v("update_success"), 2);
    cm.close();
  });

  await t.step("re-resolves every dns_refresh_rate, keeping host identity and stats", async () => {
    const dns = new FakeResolver();
    dns.set("a.test", "10.0.0.1", "10.0.0.2");
    const { cm, cluster, clock, v, addrs } = make("STRICT_DNS", [ep("a.test")], dns, {
      dns_refresh_rate: "2s",
    });
    await cm.initialize();
    const kept = cluster.hosts()[1];
    kept.stats.rq_total = 7;
    dns.set("a.test", "10.0.0.2", "10.0.0.3");
    clock.advance(1999);
    await tick();
    assert.equal(dns.calls.length, 1);
    clock.advance(1);
    await tick();
    assert.equal(dns.calls.length, 2);
    assert.deepEqual(addrs(), ["10.0.0.2:80", "10.0.0.3:80"]);
    assert.equal(cluster.hosts()[0], kept);
    assert.equal(cluster.hosts()[0].stats.rq_total, 7);
    assert.deepEqual([cluster.chooseHost({})!.address, cluster.chooseHost({})!.address].sort(), [
      "10.0.0.2",
      "10.0.0.3",
    ]);

    // A failed resolution keeps the hosts.
    dns.answers.set("a.test", new Error("SERVFAIL"));
    clock.advance(2000);
    await tick();
    assert.deepEqual(addrs(), ["10.0.0.2:80", "10.0.0.3:80"]);
    assert.equal(v("update_failure"), 1);

    cm.close();
    clock.advance(10000);
    await tick();
    assert.equal(dns.calls.length, 3, "no lookups after close");
  });

  await t.step("dns_lookup_family filters answers; empty answer empties the cluster", async () => {
    const dns = new FakeResolver();
    dns.set("a.test", "10.0.0.1", "fd00::1");
    const { cm, clock, v, addrs } = make("STRICT_DNS", [ep("a.test")], dns, { dns_lookup_family: "V4_ONLY" });
    await cm.initialize();
    assert.deepEqual(addrs(), ["10.0.0.1:80"]);
    dns.set("a.test", "fd00::1");
    clock.advance(5000);
    await tick();
    assert.deepEqual(addrs(), []);
    assert.equal(v("membership_total"), 0);
    assert.equal(v("update_empty"), 1);
    cm.close();
  });

  await t.step("a failed first resolution still completes initialize", async () => {
    const dns = new FakeResolver();
    const { cm, cluster, v } = make("STRICT_DNS", [ep("nowhere.test")], dns);
    await cm.initialize();
    assert.equal(cluster.hosts().length, 0);
    assert.equal(cluster.chooseHost({}), null);
    assert.equal(v("update_failure"), 1);
    cm.close();
  });

  await t.step("real getaddrinfo lookup of localhost (honours /etc/hosts)", async () => {
    const { cm, addrs } = make("STRICT_DNS", [ep("localhost", 8080)], systemResolver, {
      dns_lookup_family: "V4_ONLY",
    });
    await cm.initialize();
    assert.deepEqual(addrs(), ["127.0.0.1:8080"]);
    cm.close();
    assert.deepEqual(await systemResolver.lookup("::1"), [{ address: "::1", family: 6 }]);
  });

  await t.step("a removed host loses its idle pooled connections", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const dns = new FakeResolver();
    dns.set("up.test", "127.0.0.1");
    const { cm, cluster, clock, v } = make("STRICT_DNS", [ep("up.test", listener.addr.port)], dns);
    await cm.initialize();
    const accepted = listener.accept();
    const r = await cluster.acquireHttp1(cluster.hosts()[0]);
    assert.ok(r.ok);
    const server = await accepted;
    r.connection.release(true);
    assert.equal(cluster.pool.idleCount, 1);
    dns.set("up.test");
    clock.advance(5000);
    await tick();
    assert.equal(cluster.hosts().length, 0);
    assert.equal(cluster.pool.idleCount, 0);
    assert.equal(v("upstream_cx_destroy_local"), 1);
    assert.equal(await server.read(new Uint8Array(8)), null, "upstream saw the close");
    server.close();
    listener.close();
    cm.close();
  });
});

Deno.test("LOGICAL_DNS keeps one host and updates its address in place", async () => {
  const dns = new FakeResolver();
  dns.set("svc.test", "10.0.0.1", "10.0.0.2");
  const { cm, cluster, clock, addrs } = make("LOGICAL_DNS", [ep("svc.test", 443)], dns);
  await cm.initialize();
  assert.deepEqual(addrs(), ["10.0.0.1:443"]);
  const host = cluster.hosts()[0];
  assert.equal(host.hostname, "svc.test");
  dns.set("svc.test", "10.0.0.9");
  clock.advance(5000);
  await tick();
  assert.equal(cluster.hosts()[0], host);
  assert.equal(host.address, "10.0.0.9");
  assert.equal(host.addressString, "10.0.0.9:443");
  dns.answers.set("svc.test", new Error("timeout"));
  clock.advance(5000);
  await tick();
  assert.deepEqual(addrs(), ["10.0.0.9:443"]);
  cm.close();
});
