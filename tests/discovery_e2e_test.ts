/**
 * The registry end to end with nuncio itself as the client: a proxy whose EDS cluster polls the registry over
 * REST (`api_config_source: {api_type: REST, cluster_names: [registry]}`) routes to the hosts registered
 * there; a new host gets traffic, a host that stops checking in is swept and gets none. And `nuncio discovery`
 * as a subprocess: --help, the API on its port, SIGTERM exits 0.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { ManualClock } from "../src/common/clock.ts";
import { startDiscoveryService } from "../src/discovery/run.ts";
import { waitFor } from "./health_helpers.ts";
import { refusedPort, spawnNuncio, startOrigin, waitForPort } from "./helpers.ts";
import {
  edsCluster,
  loadLoop,
  restSource,
  startNuncio,
  staticCluster,
  staticRouteListener,
} from "./xds_e2e_helpers.ts";

const registrySource = {
  ...restSource,
  api_config_source: {
    ...(restSource.api_config_source as Record<string, unknown>),
    cluster_names: ["registry"],
  },
};

Deno.test("registry EDS over REST feeds a nuncio proxy: new hosts get traffic, swept hosts none", async () => {
  await using a = startOrigin("a");
  await using b = startOrigin("b");
  const clock = new ManualClock(Date.now());
  await using reg = await startDiscoveryService({ port: 0, clock, ttlMs: 600_000, sweepIntervalMs: 0 });
  const register = async (port: number) => {
    const r = await fetch(`http://127.0.0.1:${reg.port}/v1/registration/users`, {
      method: "POST",
      body: JSON.stringify({ ip: "127.0.0.1", port, tags: { az: "z1", region: "r1" } }),
    });
    assert.equal(r.status, 200, await r.text());
  };
  await register(a.port);
  const port = refusedPort();
  const adminPort = refusedPort();
  const bootstrap = stringify({
    node: { id: "edge-1", cluster: "edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    // no dynamic_resources: a static EDS cluster subscribes on its own
    static_resources: {
      listeners: [staticRouteListener(port, "ingress", "users", "reg")],
      clusters: [staticCluster("registry", reg.port), edsCluster(registrySource, "ROUND_ROBIN", "users")],
    },
  });
  await using nuncio = await startNuncio(bootstrap, adminPort, 1);
  await waitFor("traffic to a", async () => {
    try {
      return (await (await fetch(`http://127.0.0.1:${port}/x`)).text()) === "hello from a";
    } catch {
      return false;
    }
  }, 10_000);
  const load = loadLoop(port, 1);
  try {
    // a new host gets traffic
    await register(b.port);
    await load.more("hello from b|reg", 20);
    await load.more("hello from a|reg", 20);
    // a keeps quiet, b checks in; past a's TTL the sweeper removes a
    clock.advance(400_000);
    await register(b.port);
    clock.advance(200_001);
    assert.equal(await reg.registry.sweep(), 1);
    await waitFor(
      "a leaves the proxy",
      async () => (await nuncio.stat("cluster.users.membership_total")) === 1,
      10_000,
    );
    await load.more("hello from b|reg", 2); // the request in flight at the update may still have gone to a
    const aAfter = load.count("hello from a|reg");
    await load.more("hello from b|reg", 50);
    assert.equal(load.count("hello from a|reg"), aAfter, "a swept host gets no traffic");
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, []);
  assert.ok((await nuncio.stat("cluster.users.update_success")) >= 3);
  assert.equal(reg.registry.stats.snapshot().counters["discovery.registrations"], 3);
});

Deno.test("nuncio discovery: --help, the API on its port, SIGTERM exits 0", async () => {
  const help = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "discovery", "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /--sweep-interval/);
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "discovery", "--ttl", "soon"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 1);
  assert.match(new TextDecoder().decode(bad.stderr), /--ttl must be a duration/);

  const port = refusedPort();
  const child = spawnNuncio(["discovery", "--port", String(port), "--host", "127.0.0.1", "--env", "qa"]);
  try {
    await waitForPort(port);
    const base = `http://127.0.0.1:${port}`;
    assert.equal(await (await fetch(`${base}/healthcheck`)).text(), "OK");
    const post = await fetch(`${base}/v1/registration/users`, {
      method: "POST",
      body: JSON.stringify({ ip: "10.0.0.1", port: 80 }),
    });
    assert.equal(post.status, 200);
    await post.body?.cancel();
    const got = await (await fetch(`${base}/v1/registration/users`)).json();
    assert.equal(got.env, "qa");
    assert.equal(got.hosts.length, 1);
    assert.match(await (await fetch(`${base}/stats`)).text(), /discovery\.registrations: 1/);
  } finally {
    child.proc.kill("SIGTERM");
  }
  const { code, stderr } = await child.done;
  assert.equal(code, 0, stderr);
  assert.match(stderr, /Registry up \(memory store, TTL 600s, sweep every 30s/);
});
