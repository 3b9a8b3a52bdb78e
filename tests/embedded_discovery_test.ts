/**
 * The registry embedded in a proxy (`nuncio.bootstrap.discovery`): one `nuncio -c` runs the registry on its own
 * HTTP port and a static EDS cluster polling it over REST; origins registered with `nuncio register` or a POST get
 * traffic through the proxy's listener, a deregistered one gets none; the port closes with the proxy.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import { portFree, refusedPort, spawnNuncio, startOrigin } from "./helpers.ts";
import {
  edsCluster,
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

/** GET /x through the proxy: the body, or "HTTP <status>" for anything but a 200. */
async function get(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/x`, { headers: { connection: "close" } });
  const body = await r.text();
  return r.status === 200 ? body : `HTTP ${r.status}`;
}

Deno.test("nuncio.bootstrap.discovery: an embedded registry feeds the proxy's own EDS cluster", async () => {
  await using a = startOrigin("a");
  // b on another loopback address: the registry deregisters by IP (every port of it)
  await using b = Deno.serve(
    { hostname: "127.0.0.2", port: 0, onListen: () => {} },
    () => new Response("hello from b"),
  );
  const port = refusedPort();
  const adminPort = refusedPort();
  const regPort = refusedPort();
  const regUrl = `http://127.0.0.1:${regPort}`;
  const bootstrap = stringify({
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    bootstrap_extensions: [{
      name: "nuncio.bootstrap.discovery",
      typed_config: {
        "@type": "type.googleapis.com/nuncio.discovery.v1.EmbeddedRegistry",
        address: { socket_address: { address: "127.0.0.1", port_value: regPort } },
        ttl: "600s",
        sweep_interval: "1s",
        env: "test",
      },
    }],
    static_resources: {
      listeners: [staticRouteListener(port, "ingress", "users", "reg")],
      clusters: [staticCluster("registry", regPort), edsCluster(registrySource, "ROUND_ROBIN", "users")],
    },
  });
  const nuncio = await startNuncio(bootstrap, adminPort, 1);
  let agent: ReturnType<typeof spawnNuncio> | undefined;
  try {
    // the registry answered the cluster's first poll: nothing registered yet
    assert.equal(await get(port), "HTTP 503");
    assert.equal(await (await fetch(`${regUrl}/healthcheck`)).text(), "OK");
    // a registered by the agent, b by a POST
    agent = spawnNuncio([
      "register",
      "--service=users",
      `--port=${a.port}`,
      "--ip=127.0.0.1",
      `--registry=${regUrl}`,
      "--every=60s",
    ]);
    await waitFor("traffic to a", async () => (await get(port)) === "hello from a", 15_000);
    const post = await fetch(`${regUrl}/v1/registration/users`, {
      method: "POST",
      body: JSON.stringify({ ip: "127.0.0.2", port: b.addr.port }),
    });
    assert.equal(post.status, 200, await post.text());
    await waitFor("traffic to b", async () => (await get(port)) === "hello from b", 10_000);
    const listed = await (await fetch(`${regUrl}/v1/registration/users`)).json();
    assert.equal(listed.env, "test");
    assert.equal(listed.hosts.length, 2);
    // b deregistered by DELETE: only a answers
    const del = await fetch(`${regUrl}/v1/registration/users/127.0.0.2`, { method: "DELETE" });
    assert.equal(del.status, 200, await del.text());
    await waitFor(
      "b leaves the proxy",
      async () => (await nuncio.stat("cluster.users.membership_total")) === 1,
      10_000,
    );
    const after = [];
    for (let i = 0; i < 10; i++) after.push(await get(port));
    assert.deepEqual(after, Array(10).fill("hello from a"));
    // the agent stops (DELETE): nobody is left
    agent.proc.kill("SIGTERM");
    const { code, stderr } = await agent.done;
    agent = undefined;
    assert.equal(code, 0, stderr);
    await waitFor("a leaves the proxy", async () => (await get(port)) === "HTTP 503", 10_000);
    const before = a.requests.length;
    for (let i = 0; i < 5; i++) assert.equal(await get(port), "HTTP 503");
    assert.equal(a.requests.length, before, "a deregistered host gets no traffic");
    // the registry counts in the proxy's stats (admin port)
    assert.equal(await nuncio.stat("discovery.registrations"), 2);
  } finally {
    if (agent) {
      try {
        agent.proc.kill("SIGKILL");
      } catch { /* exited */ }
      await agent.done;
    }
    await nuncio.stop();
  }
  // closed with the proxy
  assert.ok(portFree(regPort), "the embedded registry's port is closed");
});
