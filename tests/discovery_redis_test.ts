/**
 * `nuncio discovery` on a real redis-server: two registry replicas sharing hosts, TTL and concurrent sweeps from
 * both replicas, and Redis killed mid-test (stale reads with the header and stats, writes 503, no crash), then
 * back (writes work again).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../src/common/clock.ts";
import { STALE_HEADER } from "../src/discovery/http.ts";
import { startDiscoveryService } from "../src/discovery/run.ts";
import { startRedis } from "../src/ratelimit/test_redis.ts";
import { waitFor } from "./health_helpers.ts";

async function call(port: number, method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) };
}

const hostsOf = async (port: number, service: string) =>
  (await call(port, "GET", `/v1/registration/${service}`)).json().hosts.map((
    h: { ip_address: string; port: number },
  ) => `${h.ip_address}:${h.port}`);

Deno.test("discovery registry on Redis: replicas, TTL, concurrent sweeps, Redis killed and back", async (t) => {
  await using redis = await startRedis();
  const clock = new ManualClock(Date.UTC(2024, 0, 1));
  const common = {
    port: 0,
    redisUrl: redis.url,
    clock,
    sweepIntervalMs: 0,
    ttlMs: 600_000,
    redisTimeoutMs: 300,
  };
  await using a = await startDiscoveryService({ ...common, redisKeyPrefix: "t1:" });
  await using b = await startDiscoveryService({ ...common, redisKeyPrefix: "t1:" });

  await t.step("a check-in on one replica is read on the other", async () => {
    for (const [ip, port] of [["10.0.0.2", 80], ["10.0.0.1", 80], ["10.0.0.1", 81]] as const) {
      const r = await call(a.port, "POST", "/v1/registration/users", {
        ip,
        port,
        service_repo_name: "people",
        tags: { az: "a" },
      });
      assert.equal(r.status, 200, r.text);
    }
    await call(a.port, "POST", "/v1/registration/users-admin", {
      ip: "10.0.0.9",
      port: 80,
      service_repo_name: "people",
    });
    assert.deepEqual(await hostsOf(b.port, "users"), ["10.0.0.1:80", "10.0.0.1:81", "10.0.0.2:80"]);
    const got = (await call(b.port, "GET", "/v1/registration/users")).json();
    assert.equal(got.env, "production");
    assert.equal(got.hosts[0].last_check_in, "2024-01-01T00:00:00.000Z");
    assert.deepEqual(got.hosts[0].tags, { az: "a" });
    const repo = (await call(b.port, "GET", "/v1/registration/repo/people")).json();
    assert.equal(repo.hosts.length, 4);
    assert.deepEqual((await call(b.port, "DELETE", "/v1/registration/users/10.0.0.1")).json(), {
      removed: 2,
    });
    assert.deepEqual(await hostsOf(a.port, "users"), ["10.0.0.2:80"]);
    const eds = (await call(b.port, "POST", "/v3/discovery:endpoints", { resource_names: ["users"] })).json();
    assert.equal(
      eds.resources[0].endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address,
      "10.0.0.2",
    );
  });

  await t.step(
    "TTL: reads hide expired hosts; both replicas sweep at once, each host goes once",
    async () => {
      clock.advance(300_000);
      for (let i = 0; i < 50; i++) {
        await call(a.port, "POST", "/v1/registration/bulk", { ip: `10.1.0.${i}`, port: 80 });
      }
      clock.advance(300_001); // users' 10.0.0.2 and users-admin expired, bulk alive
      assert.deepEqual(await hostsOf(b.port, "users"), []);
      assert.equal((await hostsOf(b.port, "bulk")).length, 50);
      clock.advance(300_000); // bulk expired too
      // a check-in racing the sweeps survives them
      const [na, nb] = await Promise.all([
        a.registry.sweep(),
        b.registry.sweep(),
        call(b.port, "POST", "/v1/registration/bulk", { ip: "10.1.0.7", port: 80 }),
      ]);
      assert.equal(na + nb, 52, "every expired host removed exactly once");
      assert.deepEqual(await hostsOf(a.port, "bulk"), ["10.1.0.7:80"]);
      assert.deepEqual(await a.registry.store.services(), ["bulk"]);
      assert.equal((await a.registry.store.hosts("bulk")).length, 1);
    },
  );

  await t.step(
    "Redis killed: stale reads with the header, writes 503, stats; back: writes work",
    async () => {
      await call(b.port, "GET", "/v1/registration/bulk"); // cached on b
      await redis.stop();
      const r = await call(b.port, "GET", "/v1/registration/bulk");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get(STALE_HEADER), "true");
      assert.deepEqual(r.json().hosts.map((h: { ip_address: string }) => h.ip_address), ["10.1.0.7"]);
      const w = await call(b.port, "POST", "/v1/registration/bulk", { ip: "10.1.0.8", port: 80 });
      assert.equal(w.status, 503);
      assert.match(w.text, /redis store unavailable/);
      assert.equal((await call(b.port, "GET", "/v1/registration/never-read")).status, 503);
      const eds = await call(b.port, "POST", "/v3/discovery:endpoints", { resource_names: ["bulk"] });
      assert.deepEqual([eds.status, eds.headers.get(STALE_HEADER)], [200, "true"]);
      assert.equal(await b.registry.sweep().then(() => "ok", () => "failed"), "failed");
      assert.match((await call(b.port, "GET", "/healthcheck")).text, /redis store unreachable/);
      const stats = (await call(b.port, "GET", "/stats")).text;
      assert.match(stats, /^discovery\.stale_reads: 2$/m);
      assert.match(stats, /^discovery\.store_error: [3-9]$/m);
      assert.match(stats, /^discovery\.redis\.disconnected: 1$/m);

      await redis.restart();
      await waitFor("reconnected", () => b.registry.store.healthy(), 10_000);
      const back = await call(b.port, "POST", "/v1/registration/bulk", { ip: "10.1.0.8", port: 80 });
      assert.equal(back.status, 200);
      const fresh = await call(a.port, "GET", "/v1/registration/bulk");
      await waitFor("a reconnected", () => a.registry.store.healthy(), 10_000);
      assert.equal(fresh.status, 200);
      // redis-server came back empty (no persistence): only the new check-in is there
      assert.deepEqual(await hostsOf(a.port, "bulk"), ["10.1.0.8:80"]);
    },
  );
});
