/** Active health checking end to end: real origins failing on cue, /clusters flags, the event log. */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  type SeenRequest,
  startOrigin,
  startRawOrigin,
  staticCluster,
} from "./helpers.ts";
import { ADMIN, get, healthFlagsOf, startServer, waitFor } from "./health_helpers.ts";

const route = [{ match: { prefix: "/" }, route: { cluster: "svc" } }];

/** An origin whose /healthz answers 200 or, while `failing`, 503; other paths answer "hello from <name>". */
function checkedOrigin(name: string, extraHc: Record<string, string> = {}) {
  const state = { failing: false, checks: [] as SeenRequest[] };
  const origin = startOrigin(name, (_req, seen) => {
    if (seen.path === "/healthz") {
      state.checks.push(seen);
      return new Response(state.failing ? "down" : "ok", {
        status: state.failing ? 503 : 200,
        headers: extraHc,
      });
    }
    return new Response(`hello from ${name}`, { headers: { "x-origin": name } });
  });
  return { origin, state };
}

const hc = (extra: Record<string, unknown> = {}) => ({
  timeout: "0.5s",
  interval: "0.05s",
  no_traffic_interval: "0.05s",
  unhealthy_threshold: 2,
  healthy_threshold: 2,
  http_health_check: {
    path: "/healthz",
    request_headers_to_add: [{ header: { key: "x-hc", value: "nuncio" } }],
  },
  ...extra,
});

Deno.test("HTTP health checks: a failing host gets no traffic and returns after healthy_threshold passes", async () => {
  const a = checkedOrigin("a");
  const b = checkedOrigin("b");
  await using _a = a.origin;
  await using _b = b.origin;
  const dir = await Deno.makeTempDir();
  const events = `${dir}/hc.log`;
  await using s = await startServer(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost(route)] })],
    [staticCluster("svc", [a.origin.port, b.origin.port], {
      health_checks: [hc({ event_log_path: events })],
    })],
    { admin: ADMIN },
  ));
  const url = `http://127.0.0.1:${s.port}/x`;
  const hostA = `127.0.0.1:${a.origin.port}`;
  // The cluster warmed after every host's first check: both take traffic at once.
  const first = new Set<string | null>();
  for (let i = 0; i < 4; i++) first.add((await get(url)).origin);
  assert.deepEqual([...first].sort(), ["a", "b"]);
  const check = a.state.checks[0];
  assert.equal(check.headers.get("host"), "svc");
  assert.equal(check.headers.get("user-agent"), "Envoy/HC");
  assert.equal(check.headers.get("x-hc"), "nuncio");

  a.state.failing = true;
  await waitFor(
    "a to fail",
    async () => healthFlagsOf(await s.admin("/clusters"), "svc", hostA) === "/failed_active_hc",
  );
  for (let i = 0; i < 6; i++) assert.equal((await get(url)).origin, "b");
  const stats = await s.admin("/stats");
  assert.match(stats, /cluster\.svc\.health_check\.healthy: 1\n/);
  assert.match(stats, /cluster\.svc\.membership_healthy: 1\n/);
  assert.match(stats, /cluster\.svc\.membership_total: 2\n/);

  a.state.failing = false;
  const before = a.state.checks.length;
  await waitFor(
    "a to pass again",
    async () => healthFlagsOf(await s.admin("/clusters"), "svc", hostA) === "healthy",
  );
  assert.ok(a.state.checks.length - before >= 2, "healthy_threshold passes were needed");
  const back = new Set<string | null>();
  for (let i = 0; i < 4; i++) back.add((await get(url)).origin);
  assert.deepEqual([...back].sort(), ["a", "b"]);

  await s.close();
  const lines = (await Deno.readTextFile(events)).trim().split("\n").map((l) => JSON.parse(l));
  await Deno.remove(dir, { recursive: true });
  const forA = lines.filter((e) => e.host.socket_address.port_value === a.origin.port);
  assert.deepEqual(forA[0].add_healthy_event, { first_check: true });
  assert.equal(forA[0].health_checker_type, "HTTP");
  assert.equal(forA[0].cluster_name, "svc");
  assert.ok(forA.some((e) => e.eject_unhealthy_event?.failure_type === "ACTIVE"));
  assert.ok(forA.some((e) => e.add_healthy_event?.first_check === false));
});

Deno.test("x-envoy-immediate-health-check-fail marks the host unhealthy at once", async () => {
  const a = checkedOrigin("a", { "x-envoy-immediate-health-check-fail": "true" });
  const b = checkedOrigin("b");
  await using _a = a.origin;
  await using _b = b.origin;
  await using s = await startServer(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost(route)] })],
    [staticCluster("svc", [a.origin.port, b.origin.port], {
      health_checks: [hc({ unhealthy_threshold: 10 })],
    })],
    { admin: ADMIN },
  ));
  const text = await s.admin("/clusters");
  assert.equal(
    healthFlagsOf(text, "svc", `127.0.0.1:${a.origin.port}`),
    "/failed_active_hc/excluded_via_immediate_hc_fail",
  );
  assert.equal(healthFlagsOf(text, "svc", `127.0.0.1:${b.origin.port}`), "healthy");
  for (let i = 0; i < 4; i++) assert.equal((await get(`http://127.0.0.1:${s.port}/`)).origin, "b");
  const json = JSON.parse(await s.admin("/clusters?format=json"));
  const hostA = json.cluster_statuses[0].host_statuses.find((
    h: { address: { socket_address: { port_value: number } } },
  ) => h.address.socket_address.port_value === a.origin.port);
  assert.equal(hostA.health_status.failed_active_health_check, true);
  assert.equal(hostA.health_status.excluded_via_immediate_hc_fail, true);
});

Deno.test("TCP health checks: send and receive payloads (hex text and base64 binary)", async () => {
  const healthy = { on: true };
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  // Answers "pong" to each "ping" while healthy; says "nope" otherwise.
  const raw = startRawOrigin(async (conn) => {
    const buf = new Uint8Array(64);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      if (dec.decode(buf.subarray(0, n)).includes("ping")) {
        await conn.write(enc.encode(healthy.on ? "po" + "ng" : "nope"));
      }
    }
  });
  await using _raw = raw;
  await using s = await startServer(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost(route)] })],
    [staticCluster("svc", [raw.port], {
      health_checks: [{
        timeout: "0.2s",
        interval: "0.05s",
        no_traffic_interval: "0.05s",
        unhealthy_threshold: 1,
        healthy_threshold: 1,
        tcp_health_check: { send: { text: "70696e67" }, receive: [{ binary: btoa("po") }, { text: "6e67" }] },
      }],
    })],
    { admin: ADMIN },
  ));
  const host = `127.0.0.1:${raw.port}`;
  assert.equal(healthFlagsOf(await s.admin("/clusters"), "svc", host), "healthy");
  healthy.on = false;
  await waitFor("a timeout failure", async () => {
    const f = healthFlagsOf(await s.admin("/clusters"), "svc", host);
    return f === "/failed_active_hc/active_hc_timeout";
  });
  assert.match(await s.admin("/stats"), /cluster\.svc\.health_check\.network_failure: [1-9]/);
  healthy.on = true;
  await waitFor(
    "the host back",
    async () => healthFlagsOf(await s.admin("/clusters"), "svc", host) === "healthy",
  );
  // reuse_connection (default): one connection serves many checks
  assert.ok(raw.accepted <= 3, `${raw.accepted} connections`);
});

Deno.test("x-envoy-immediate-health-check-fail on a traffic response fails the host at once (passive)", async () => {
  const state = { draining: true };
  const a = startOrigin("a", (_req, seen) => {
    if (seen.path === "/healthz") return new Response("ok");
    const headers: Record<string, string> = { "x-origin": "a" };
    if (state.draining) headers["x-envoy-immediate-health-check-fail"] = "true";
    return new Response("hello from a", { headers });
  });
  const b = checkedOrigin("b");
  await using _a = a;
  await using _b = b.origin;
  await using s = await startServer(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost(route)] })],
    [staticCluster("svc", [a.port, b.origin.port], {
      // the first check runs at start; the next one only after 30 s, so the passive failure is what we see
      health_checks: [hc({ interval: "30s", no_traffic_interval: "30s", healthy_threshold: 1 })],
    })],
    { admin: ADMIN },
  ));
  const hostA = `127.0.0.1:${a.port}`;
  assert.equal(healthFlagsOf(await s.admin("/clusters"), "svc", hostA), "healthy");
  // round robin reaches a within two requests; its answer carries the header
  const seen: (string | null)[] = [];
  for (let i = 0; i < 2; i++) seen.push((await get(`http://127.0.0.1:${s.port}/`)).origin);
  assert.ok(seen.includes("a"), seen.join(","));
  await waitFor(
    "host a flagged by the traffic response",
    async () =>
      healthFlagsOf(await s.admin("/clusters"), "svc", hostA) ===
        "/failed_active_hc/excluded_via_immediate_hc_fail",
  );
  for (let i = 0; i < 6; i++) assert.equal((await get(`http://127.0.0.1:${s.port}/`)).origin, "b");
  const stats = await s.admin("/stats?filter=health_check");
  assert.match(stats, /cluster\.svc\.health_check\.passive_failure: 1/);
});
