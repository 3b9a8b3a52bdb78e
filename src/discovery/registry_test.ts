import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import { Registry, StoreUnavailableError } from "./registry.ts";
import { MemoryStore, type RegistryStore } from "./store.ts";

function setup(store: RegistryStore = new MemoryStore()) {
  const clock = new ManualClock();
  const stats = new StatsStore();
  const registry = new Registry({ store, stats, clock, ttlMs: 600_000, sweepIntervalMs: 30_000 });
  const stat = (n: string) => stats.snapshot().counters[`discovery.${n}`] ?? 0;
  return { clock, stats, registry, stat };
}

const ips = (r: { hosts: { ip_address: string; port: number }[] }) =>
  r.hosts.map((h) => `${h.ip_address}:${h.port}`);

Deno.test("Registry: check-ins are keyed by (service, ip, port) and re-registering refreshes", async () => {
  const { clock, registry, stat } = setup();
  await registry.register("users", { ip: "10.0.0.2", port: 80 });
  await registry.register("users", { ip: "10.0.0.1", port: 81 });
  await registry.register("users", { ip: "10.0.0.1", port: 80, revision: "a" });
  clock.advance(1000);
  await registry.register("users", { ip: "10.0.0.1", port: 80, revision: "b" });
  const r = await registry.hosts("users");
  assert.deepEqual(ips(r), ["10.0.0.1:80", "10.0.0.1:81", "10.0.0.2:80"]);
  assert.equal(r.hosts[0].revision, "b");
  assert.equal(r.hosts[0].last_check_in, clock.now());
  assert.equal(r.stale, false);
  assert.deepEqual((await registry.hosts("nobody")).hosts, []);
  assert.equal(stat("registrations"), 4);
  // DELETE removes every port of the ip
  assert.equal(await registry.deregister("users", "10.0.0.1"), 2);
  assert.deepEqual(ips(await registry.hosts("users")), ["10.0.0.2:80"]);
  assert.equal(stat("deregistrations"), 2);
});

Deno.test("Registry: hosts by repo, across services", async () => {
  const { registry } = setup();
  await registry.register("users", { ip: "10.0.0.1", port: 80, service_repo_name: "people" });
  await registry.register("users-worker", { ip: "10.0.0.2", port: 80, service_repo_name: "people" });
  await registry.register("orders", { ip: "10.0.0.3", port: 80, service_repo_name: "shop" });
  const r = await registry.hostsOfRepo("people");
  assert.deepEqual(r.hosts.map((h) => h.service), ["users", "users-worker"]);
});

Deno.test("Registry: expired hosts are never read, and the sweeper removes them", async () => {
  const { clock, registry, stat } = setup();
  await registry.register("users", { ip: "10.0.0.1", port: 80 });
  clock.advance(300_000);
  await registry.register("users", { ip: "10.0.0.2", port: 80 });
  // no sweeper running: reads alone hide the expired host
  clock.advance(300_001);
  assert.deepEqual(ips(await registry.hosts("users")), ["10.0.0.2:80"]);
  assert.equal((await registry.store.hosts("users")).length, 2, "still stored until swept");
  registry.start();
  clock.advance(30_000);
  assert.equal(await registry.sweeping, 1);
  assert.equal((await registry.store.hosts("users")).length, 1);
  assert.equal(stat("swept"), 1);
  assert.equal(stat("sweeps"), 1);
  // the sweeper keeps running; the last host expires too
  for (let i = 0; i < 10; i++) {
    clock.advance(30_000);
    await registry.sweeping;
  }
  assert.deepEqual(await registry.store.services(), []);
  assert.equal(stat("swept"), 2);
  await registry.close();
});

/** A store that fails whenever `down` is set. */
class FlakyStore extends MemoryStore {
  down = false;
  #check(): void {
    if (this.down) throw new Error("connection refused");
  }
  override register(...a: Parameters<MemoryStore["register"]>) {
    return Promise.resolve().then(() => this.#check()).then(() => super.register(...a));
  }
  override hosts(s: string) {
    return Promise.resolve().then(() => this.#check()).then(() => super.hosts(s));
  }
  override sweep(c: number) {
    return Promise.resolve().then(() => this.#check()).then(() => super.sweep(c));
  }
  override healthy() {
    return !this.down;
  }
}

Deno.test("Registry: while the store fails, reads answer from the cache (stale), writes fail", async () => {
  const store = new FlakyStore();
  const { clock, registry, stat } = setup(store);
  await registry.register("users", { ip: "10.0.0.1", port: 80 });
  assert.equal((await registry.hosts("users")).hosts.length, 1);
  store.down = true;
  const r = await registry.hosts("users");
  assert.deepEqual({ n: r.hosts.length, stale: r.stale }, { n: 1, stale: true });
  // a cached answer stays served past the TTL: hosts cannot check in while the store is down
  clock.advance(700_000);
  assert.equal((await registry.hosts("users")).hosts.length, 1);
  await assert.rejects(registry.register("users", { ip: "10.0.0.2", port: 80 }), StoreUnavailableError);
  await assert.rejects(registry.hosts("never-read"), StoreUnavailableError);
  // a failing sweep is counted, not thrown, and the sweeper keeps going
  registry.start();
  clock.advance(30_000);
  assert.equal(await registry.sweeping, 0);
  assert.equal(stat("stale_reads"), 2);
  assert.equal(stat("store_error"), 5);
  store.down = false;
  assert.deepEqual((await registry.hosts("users")).hosts, [], "back: the expired host is gone");
  await registry.close();
});
