/**
 * `nuncio register` and the `nuncio.bootstrap.register` bootstrap extension end to end, as subprocesses of
 * main.ts: against the STAND-IN registry of src/register/test_registry.ts (Lyft's v1 API, no TTL), and the
 * last test against the real `nuncio discovery` (TTL and sweeper included).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { startFakeRegistry } from "../src/register/test_registry.ts";
import { okListener, sleep, spawnNuncio, waitForPort } from "./helpers.ts";
import { freePort } from "./health_helpers.ts";

Deno.test("nuncio register: retries a failing registry, registers, re-checks in, SIGTERM deregisters", async () => {
  await using reg = startFakeRegistry();
  reg.failWith = 503;
  const child = spawnNuncio([
    "register",
    "--service=users",
    "--port=9211",
    "--ip=10.0.0.7",
    `--registry=${reg.url}`,
    "--every=300ms",
    "--revision=abc123",
    "--repo=users-svc",
    "--tag=az=us-east-1a",
    "--tag=canary=true",
    "--tag=load_balancing_weight=3",
  ]);
  try {
    await reg.waitFor(/^POST \/v1\/registration\/users$/, 2);
    assert.deepEqual(reg.hosts("users"), []);
    reg.failWith = undefined;
    // the backoff (1 s, 2 s, ...) brings it back without a restart
    await reg.waitFor(/^POST /, reg.requests.length + 1);
    const res = await fetch(`${reg.url}/v1/registration/users`);
    const body = await res.json();
    assert.equal(body.service, "users");
    assert.equal(body.hosts.length, 1);
    assert.deepEqual({ ...body.hosts[0], last_check_in: "" }, {
      ip_address: "10.0.0.7",
      port: 9211,
      revision: "abc123",
      service_repo_name: "users-svc",
      last_check_in: "",
      tags: { az: "us-east-1a", canary: true, load_balancing_weight: 3 },
    });
    // and keeps checking in every 300 ms (± 10 %)
    const first = body.hosts[0].last_check_in;
    await reg.waitFor(/^POST /, reg.requests.length + 2);
    assert.ok(reg.hosts("users")[0].last_check_in > first);
    child.proc.kill("SIGTERM");
    const { code, stderr } = await child.done;
    assert.equal(code, 0, stderr);
    assert.equal(reg.requests.at(-1), "DELETE /v1/registration/users/10.0.0.7");
    assert.deepEqual(reg.hosts("users"), []);
    // state changes are logged once each, not once per failure or per check-in
    assert.equal(
      stderr.match(/check-in to .* failed \(HTTP 503: registry trouble\): retrying with backoff/g)?.length,
      1,
      stderr,
    );
    assert.equal(stderr.match(/checked in users at 10\.0\.0\.7:9211/g)?.length, 1, stderr);
    assert.match(stderr, /deregistered users at 10\.0\.0\.7/);
  } finally {
    try {
      child.proc.kill("SIGKILL");
    } catch { /* exited */ }
    await child.done;
  }
});

Deno.test("nuncio register --health-url: stops checking in while the service is unhealthy; SIGINT deregisters", async () => {
  await using reg = startFakeRegistry();
  let healthy = true;
  await using svc = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(healthy ? "ok" : "down", { status: healthy ? 200 : 503 }),
  );
  const child = spawnNuncio([
    "register",
    "--service",
    "users",
    "--port",
    String(svc.addr.port),
    "--ip",
    "127.0.0.1",
    "--registry",
    reg.url,
    "--every",
    "200ms",
    "--health-url",
    `http://127.0.0.1:${svc.addr.port}/healthcheck`,
  ]);
  try {
    await reg.waitFor(/^POST /, 2);
    healthy = false;
    await sleep(400);
    const posts = reg.posts.length;
    await sleep(1500);
    // at most one check-in that was already past its health check
    assert.ok(reg.posts.length <= posts + 1, `${reg.posts.length - posts} check-ins while unhealthy`);
    healthy = true;
    await reg.waitFor(/^POST /, reg.posts.length + 1);
    child.proc.kill("SIGINT");
    const { code, stderr } = await child.done;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /healthcheck is unhealthy \(HTTP 503\): not checking in until it answers 2xx/);
    assert.equal(reg.requests.at(-1), "DELETE /v1/registration/users/127.0.0.1");
  } finally {
    try {
      child.proc.kill("SIGKILL");
    } catch { /* exited */ }
    await child.done;
  }
});

Deno.test("nuncio -c with nuncio.bootstrap.register: the proxy checks its service in, SIGTERM deregisters", async () => {
  await using reg = startFakeRegistry();
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "nuncio_register_" });
  const path = `${dir}/bootstrap.yaml`;
  await Deno.writeTextFile(
    path,
    stringify({
      static_resources: { listeners: [okListener("ingress", port)], clusters: [] },
      bootstrap_extensions: [{
        name: "nuncio.bootstrap.register",
        typed_config: {
          "@type": "type.googleapis.com/nuncio.register.v1.Register",
          service: "users",
          port,
          ip: "127.0.0.1",
          registry_url: reg.url,
          every: "0.3s",
          tags: { az: "us-east-1b", instance_id: "i-42" },
        },
      }],
    }),
  );
  const child = spawnNuncio(["-c", path, "--concurrency", "2"]);
  try {
    await waitForPort(port);
    await reg.waitFor(/^POST \/v1\/registration\/users$/, 2);
    assert.deepEqual(reg.hosts("users").map((h) => [h.ip_address, h.port, h.tags]), [[
      "127.0.0.1",
      port,
      { az: "us-east-1b", instance_id: "i-42" },
    ]]);
    child.proc.kill("SIGTERM");
    const { code, stderr } = await child.done;
    assert.equal(code, 0, stderr);
    assert.equal(reg.requests.at(-1), "DELETE /v1/registration/users/127.0.0.1");
    assert.deepEqual(reg.hosts("users"), []);
    assert.match(stderr, /\[nuncio\.bootstrap\.register\] checked in users at 127\.0\.0\.1:\d+/);
  } finally {
    try {
      child.proc.kill("SIGKILL");
    } catch { /* exited */ }
    await child.done;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nuncio.bootstrap.register: on SIGTERM the DELETE goes out before the listeners drain", async () => {
  const port = freePort();
  // a registry that, while answering the DELETE, asks the proxy's listener on a new connection
  const seen: string[] = [];
  let deletedAt = 0;
  let probe: { at: number; answer: string } | undefined;
  await using reg = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    const path = new URL(req.url).pathname;
    seen.push(`${req.method} ${path}`);
    if (req.method === "DELETE") {
      deletedAt = performance.now();
      const answer = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } })
        .then(async (r) => `${r.status} ${await r.text()}`, (e) => `failed: ${e}`);
      probe = { at: performance.now(), answer };
    }
    return Response.json({});
  });
  const dir = await Deno.makeTempDir({ prefix: "nuncio_register_" });
  const path = `${dir}/bootstrap.yaml`;
  await Deno.writeTextFile(
    path,
    stringify({
      static_resources: { listeners: [okListener("ingress", port)], clusters: [] },
      bootstrap_extensions: [{
        name: "nuncio.bootstrap.register",
        typed_config: {
          "@type": "type.googleapis.com/nuncio.register.v1.Register",
          service: "users",
          port,
          ip: "127.0.0.1",
          registry_url: `http://127.0.0.1:${reg.addr.port}`,
          every: "60s",
        },
      }],
    }),
  );
  const child = spawnNuncio(["-c", path, "--concurrency", "2", "--drain-time-s", "5"]);
  try {
    await waitForPort(port);
    const deadline = Date.now() + 15_000;
    while (!seen.includes("POST /v1/registration/users")) {
      assert.ok(Date.now() < deadline, `no check-in: ${seen.join(", ")}`);
      await sleep(20);
    }
    await sleep(500); // the signal handlers are installed just after the listeners bind
    child.proc.kill("SIGTERM");
    const { code, stderr } = await child.done;
    assert.equal(code, 0, stderr);
    assert.deepEqual(seen, ["POST /v1/registration/users", "DELETE /v1/registration/users/127.0.0.1"]);
    // the listener still took a new connection and answered after the DELETE had arrived
    assert.equal(probe?.answer, "200 ok", stderr);
    assert.ok(probe!.at >= deletedAt);
    assert.match(stderr, /deregistered users at 127\.0\.0\.1/);
  } finally {
    try {
      child.proc.kill("SIGKILL");
    } catch { /* exited */ }
    await child.done;
    await Deno.remove(dir, { recursive: true });
  }
});

/** GETs the real registry's hosts of `service` until `ok` holds (bounded); returns the last answer's hosts. */
async function hostsUntil(
  url: string,
  ok: (hosts: Record<string, unknown>[]) => boolean,
  timeoutMs = 15000,
): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const hosts = await fetch(url).then(async (r) => (last = await r.json()).hosts ?? [], () => []);
    if (ok(hosts)) return hosts;
    if (Date.now() > deadline) {
      throw new Error(`Registry never answered as expected: ${JSON.stringify(last)}`);
    }
    await sleep(50);
  }
}

Deno.test("nuncio register against the real nuncio discovery: registers, is swept while unhealthy, deregisters", async () => {
  const regPort = freePort();
  const registry = spawnNuncio([
    "discovery",
    "--host=127.0.0.1",
    `--port=${regPort}`,
    "--ttl=1s",
    "--sweep-interval=100ms",
    "--env=test",
  ]);
  let healthy = true;
  await using svc = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response(healthy ? "ok" : "down", { status: healthy ? 200 : 503 }),
  );
  let agent: ReturnType<typeof spawnNuncio> | undefined;
  try {
    await waitForPort(regPort);
    agent = spawnNuncio([
      "register",
      "--service=users",
      `--port=${svc.addr.port}`,
      "--ip=127.0.0.1",
      `--registry=http://127.0.0.1:${regPort}`,
      "--every=200ms",
      "--revision=abc123",
      "--repo=users-svc",
      "--tag=az=us-east-1a",
      "--tag=load_balancing_weight=2",
      `--health-url=http://127.0.0.1:${svc.addr.port}/healthcheck`,
    ]);
    const url = `http://127.0.0.1:${regPort}/v1/registration/users`;
    const [h] = await hostsUntil(url, (hs) => hs.length === 1);
    assert.equal(h.ip_address, "127.0.0.1");
    assert.equal(h.port, svc.addr.port);
    assert.equal(h.revision, "abc123");
    assert.equal(h.service_repo_name, "users-svc");
    assert.equal((h.tags as Record<string, unknown>).az, "us-east-1a");
    assert.equal((h.tags as Record<string, unknown>).load_balancing_weight, 2);
    // the service goes down: the agent stops checking in and the registry's TTL sweeps the host
    healthy = false;
    await hostsUntil(url, (hs) => hs.length === 0);
    healthy = true;
    await hostsUntil(url, (hs) => hs.length === 1);
    agent.proc.kill("SIGTERM");
    const { code, stderr } = await agent.done;
    assert.equal(code, 0, stderr);
    // deregistered at once, long before the TTL would have removed it
    const after = await fetch(url).then((r) => r.json());
    assert.deepEqual(after.hosts, [], stderr);
  } finally {
    for (const p of [agent, registry]) {
      try {
        p?.proc.kill("SIGTERM");
      } catch { /* exited */ }
      await p?.done;
    }
  }
});
