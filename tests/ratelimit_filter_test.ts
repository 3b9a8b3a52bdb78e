/**
 * The global rate-limit filters end to end: nuncio's HTTP and network ratelimit filters calling the real
 * `nuncio ratelimit` service over gRPC (HTTP/2) through a cluster, with real origins and sockets.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  type Proxy,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
  tcpListener,
} from "./helpers.ts";
import { startRatelimitService } from "../src/ratelimit/run.ts";
import { ADMIN, freePort, startServer } from "./health_helpers.ts";

type Obj = Record<string, unknown>;

const LIMITS = `
domain: edge
descriptors:
  - key: generic_key
    value: slow
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: remote_address
    rate_limit: { unit: minute, requests_per_unit: 1000 }
  - key: database
    value: users
    rate_limit: { unit: minute, requests_per_unit: 3 }
`;

function rlFilter(extra: Obj = {}): Obj {
  return {
    name: "envoy.filters.http.ratelimit",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
      domain: "edge",
      timeout: "0.5s",
      rate_limit_service: {
        grpc_service: { envoy_grpc: { cluster_name: "rls" } },
        transport_api_version: "V3",
      },
      ...extra,
    },
  };
}

const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};

async function withService(fn: (grpcPort: number, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_rl_" });
  await Deno.writeTextFile(`${dir}/edge.yaml`, LIMITS);
  const svc = await startRatelimitService({ limitsPath: dir, grpcPort: 0, watchIntervalMs: 0 });
  try {
    await fn(svc.grpcPort!, dir);
  } finally {
    await svc.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function proxyYaml(originPort: number, rlsPort: number, filterExtra: Obj = {}): string {
  return bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([
        {
          match: { prefix: "/limited" },
          route: {
            cluster: "origin",
            rate_limits: [{ actions: [{ generic_key: { descriptor_value: "slow" } }] }],
          },
        },
        { match: { prefix: "/" }, route: { cluster: "origin" } },
      ], { rate_limits: [{ actions: [{ remote_address: {} }] }] })],
      hcm: { http_filters: [rlFilter(filterExtra), ROUTER] },
    })],
    [staticCluster("origin", [originPort]), staticCluster("rls", [rlsPort])],
  );
}

async function statuses(p: Proxy, path: string, n: number): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const r = await fetch(p.url(path));
    await r.body?.cancel();
    out.set(r.status, (out.get(r.status) ?? 0) + 1);
  }
  return out;
}

Deno.test("http ratelimit: 10 per minute gives exactly 10 successes and 90 x 429", async () => {
  await using origin = startOrigin("o");
  await withService(async (rlsPort) => {
    await using p = await startProxy(proxyYaml(origin.port, rlsPort));
    const counts = await statuses(p, "/limited", 100);
    assert.equal(counts.get(200), 10);
    assert.equal(counts.get(429), 90);
    assert.equal(origin.requests.length, 10);
    const r = await fetch(p.url("/limited"));
    await r.body?.cancel();
    assert.equal(r.status, 429);
    assert.equal(r.headers.get("x-envoy-ratelimited"), "true");
    const log = await p.log(101);
    assert.equal(log.filter((e) => e.code === "429" && e.flags === "RL").length, 91);
    assert.equal(p.stat("cluster.origin.ratelimit.ok"), 10);
    assert.equal(p.stat("cluster.origin.ratelimit.over_limit"), 91);
    // a route without its own limits uses the virtual host's (remote_address, 1000/min): all pass
    const other = await statuses(p, "/other", 20);
    assert.equal(other.get(200), 20);
  });
});

Deno.test("http ratelimit: draft-03 headers and the service's decision details", async () => {
  await using origin = startOrigin("o");
  await withService(async (rlsPort) => {
    await using p = await startProxy(
      proxyYaml(origin.port, rlsPort, { enable_x_ratelimit_headers: "DRAFT_VERSION_03" }),
    );
    const r = await fetch(p.url("/limited"));
    await r.body?.cancel();
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-ratelimit-limit"), "10, 10;w=60");
    assert.equal(r.headers.get("x-ratelimit-remaining"), "9");
    assert.ok(Number(r.headers.get("x-ratelimit-reset")) <= 60);
  });
});

Deno.test("http ratelimit: service down fails open within the timeout, or closed with failure_mode_deny", async () => {
  await using origin = startOrigin("o");
  // a port nobody listens on: connect refused
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = (l.addr as Deno.NetAddr).port;
  l.close();
  {
    await using p = await startProxy(proxyYaml(origin.port, dead, { timeout: "0.05s" }));
    const t0 = performance.now();
    const counts = await statuses(p, "/limited", 5);
    assert.equal(counts.get(200), 5);
    assert.ok(performance.now() - t0 < 2000);
    const log = await p.log(5);
    assert.ok(log.every((e) => e.code === "200" && e.flags === "RLSE"), JSON.stringify(log));
    assert.equal(p.stat("cluster.origin.ratelimit.error"), 5);
    assert.equal(p.stat("cluster.origin.ratelimit.failure_mode_allowed"), 5);
  }
  {
    await using p = await startProxy(proxyYaml(origin.port, dead, { failure_mode_deny: true }));
    const counts = await statuses(p, "/limited", 3);
    assert.equal(counts.get(500), 3);
    const log = await p.log(3);
    assert.ok(log.every((e) => e.flags === "RLSE"));
  }
  // a stalled service (accepts, never answers) times out and fails open
  const stalled = startRawOrigin(async (conn) => {
    const buf = new Uint8Array(1024);
    while ((await conn.read(buf)) !== null) { /* never answer */ }
  });
  try {
    await using p = await startProxy(proxyYaml(origin.port, stalled.port, { timeout: "0.1s" }));
    const t0 = performance.now();
    const counts = await statuses(p, "/limited", 3);
    const ms = performance.now() - t0;
    assert.equal(counts.get(200), 3);
    assert.ok(ms >= 300 && ms < 3000, `took ${ms} ms`);
  } finally {
    await stalled.close();
  }
});

Deno.test("network ratelimit: over the limit closes new connections before they reach the upstream", async () => {
  await using echo = startRawOrigin(async (conn) => {
    const buf = new Uint8Array(1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      await conn.write(buf.subarray(0, n));
    }
  });
  await withService(async (rlsPort) => {
    const tcp = tcpListener("db", "echo") as { filter_chains: { filters: Obj[] }[] };
    tcp.filter_chains[0].filters.unshift({
      name: "envoy.filters.network.ratelimit",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.ratelimit.v3.RateLimit",
        stat_prefix: "mongo",
        domain: "edge",
        descriptors: [{ entries: [{ key: "database", value: "users" }] }],
        timeout: "0.5s",
        rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: "rls" } } },
      },
    });
    await using p = await startProxy(
      bootstrapYaml([tcp], [staticCluster("echo", [echo.port]), staticCluster("rls", [rlsPort])]),
    );
    let echoed = 0, closed = 0;
    for (let i = 0; i < 5; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: p.port("db") });
      try {
        await c.write(new TextEncoder().encode("ping"));
        const buf = new Uint8Array(16);
        const n = await c.read(buf).catch(() => null);
        if (n === 4) echoed++;
        else closed++;
      } finally {
        c.close();
      }
    }
    assert.equal(echoed, 3);
    assert.equal(closed, 2);
    assert.equal(echo.accepted, 3);
    assert.equal(p.stat("ratelimit.mongo.ok"), 3);
    assert.equal(p.stat("ratelimit.mongo.over_limit"), 2);
    assert.equal(p.stat("ratelimit.mongo.cx_closed"), 2);
  });
});

/** A proxy on `listenPort` whose route asks the embedded service (limits in `dir`) bound on `rlsPort`. */
function embeddedYaml(originPort: number, dir: string, rlsPort: number, listenPort: number, extra: Obj = {}) {
  const listener = httpListener({
    virtualHosts: [anyHost([{
      match: { prefix: "/" },
      route: {
        cluster: "origin",
        rate_limits: [{ actions: [{ generic_key: { descriptor_value: "slow" } }] }],
      },
    }])],
    hcm: { http_filters: [rlFilter(extra), ROUTER] },
  }) as { address: { socket_address: { port_value: number } } };
  listener.address.socket_address.port_value = listenPort;
  return bootstrapYaml([listener], [
    staticCluster("origin", [originPort]),
    staticCluster("rls", [rlsPort]),
  ], {
    admin: ADMIN,
    bootstrap_extensions: [{
      name: "nuncio.bootstrap.ratelimit_service",
      typed_config: {
        "@type": "type.googleapis.com/nuncio.ratelimit.v1.EmbeddedRateLimitService",
        limits_path: dir,
        grpc_address: { socket_address: { address: "127.0.0.1", port_value: rlsPort } },
        watch_interval: "0s",
      },
    }],
  });
}

Deno.test("embedded rate-limit service (bootstrap_extensions) serves the proxy's filter, 2 workers share the limit", async () => {
  await using origin = startOrigin("o");
  const dir = await Deno.makeTempDir({ prefix: "nuncio_rl_embedded_" });
  await Deno.writeTextFile(`${dir}/edge.yaml`, LIMITS);
  const yaml = embeddedYaml(origin.port, dir, freePort(), freePort());
  try {
    await using s = await startServer(yaml, 2);
    const codes = new Map<number, number>();
    // separate connections so both workers take requests
    for (let i = 0; i < 30; i++) {
      const r = await fetch(`http://127.0.0.1:${s.port}/`, { headers: { connection: "close" } });
      await r.body?.cancel();
      codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
    }
    assert.equal(codes.get(200), 10);
    assert.equal(codes.get(429), 20);
    // the service's own stats show on the proxy's admin port
    const stats = await s.admin("/stats?filter=ratelimit.service");
    assert.match(stats, /ratelimit\.service\.rate_limit\.edge\.generic_key_slow\.over_limit: 20/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embedded rate-limit service on the proxy's own thread is called directly: same answers, no gRPC", async () => {
  await using origin = startOrigin("o");
  const dir = await Deno.makeTempDir({ prefix: "nuncio_rl_direct_" });
  await Deno.writeTextFile(`${dir}/edge.yaml`, LIMITS);
  const stat = (text: string, name: string) =>
    Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(text)?.[1] ?? 0);
  try {
    {
      const extra = { enable_x_ratelimit_headers: "DRAFT_VERSION_03" };
      await using s = await startServer(embeddedYaml(origin.port, dir, freePort(), freePort(), extra), 1);
      const codes = new Map<number, number>();
      for (let i = 0; i < 30; i++) {
        const r = await fetch(`http://127.0.0.1:${s.port}/`);
        await r.body?.cancel();
        codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
        if (i === 0) {
          assert.equal(r.headers.get("x-ratelimit-limit"), "10, 10;w=60");
          assert.equal(r.headers.get("x-ratelimit-remaining"), "9");
          assert.ok(Number(r.headers.get("x-ratelimit-reset")) <= 60);
        }
        if (i === 29) {
          assert.equal(r.headers.get("x-envoy-ratelimited"), "true");
          assert.equal(r.headers.get("x-ratelimit-remaining"), "0");
        }
      }
      assert.equal(codes.get(200), 10);
      assert.equal(codes.get(429), 20);
      const stats = await s.admin("/stats");
      assert.equal(stat(stats, "cluster.origin.ratelimit.ok"), 10);
      assert.equal(stat(stats, "cluster.origin.ratelimit.over_limit"), 20);
      assert.equal(stat(stats, "ratelimit.service.rate_limit.edge.generic_key_slow.over_limit"), 20);
      // decided in process: the rls cluster never opened a connection
      assert.equal(stat(stats, "cluster.rls.upstream_cx_total"), 0);
    }
    // a service whose limits failed to load answers UNAVAILABLE: fail open (RLSE), or 500 with failure_mode_deny
    await Deno.writeTextFile(`${dir}/edge.yaml`, "domain: [");
    for (const deny of [false, true]) {
      const yaml = embeddedYaml(origin.port, dir, freePort(), freePort(), { failure_mode_deny: deny });
      await using s = await startServer(yaml, 1);
      const r = await fetch(`http://127.0.0.1:${s.port}/`);
      await r.body?.cancel();
      assert.equal(r.status, deny ? 500 : 200);
      const stats = await s.admin("/stats");
      assert.equal(stat(stats, "cluster.origin.ratelimit.error"), 1);
      assert.equal(stat(stats, "cluster.origin.ratelimit.failure_mode_allowed"), deny ? 0 : 1);
      assert.equal(stat(stats, "cluster.rls.upstream_cx_total"), 0);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
