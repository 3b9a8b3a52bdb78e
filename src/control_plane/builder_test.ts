import assert from "node:assert/strict";
import "../registry/builtin.ts";
import { parseResource } from "../server/xds_apply.ts";
import { build } from "./builder.ts";
import { loadInputs } from "./inputs.ts";

const MESH = new URL("../../config/mesh/", import.meta.url).pathname;

async function meshInputs() {
  const set = await loadInputs({
    manifests: `${MESH}manifests`,
    defaults: `${MESH}defaults.yaml`,
    edge: `${MESH}edge.yaml`,
  });
  assert.deepEqual(set.errors, []);
  return {
    defaults: set.defaults!.value,
    edge: set.edge!.value,
    manifests: new Map([...set.manifests].map(([k, v]) => [k, v.value])),
  };
}

Deno.test("builder: every resource of the example mesh is one nuncio's xDS client accepts", async () => {
  const b = build(await meshInputs());
  assert.deepEqual([...b.nodes.keys()], ["locations", "users", "edge"]);
  for (const [node, c] of b.nodes) {
    for (const l of c.listeners) {
      const r = parseResource("listener", l.name as string, l);
      assert(r.ok, `${node}: ${!r.ok && r.message}`);
    }
    for (const x of c.routes) {
      const r = parseResource("route", x.name as string, x);
      assert(r.ok, `${node}: ${!r.ok && r.message}`);
    }
    for (const x of c.clusters) {
      const r = parseResource("cluster", x.name as string, x);
      assert(r.ok, `${node}: ${!r.ok && r.message}`);
    }
  }
});

Deno.test("builder: a service gets exactly its manifest's clusters and listeners; knobs fall back to defaults", async () => {
  const b = build(await meshInputs());
  const users = b.nodes.get("users")!;
  assert.deepEqual(users.listeners.map((l) => l.name), [
    "ingress",
    "egress",
    "tcp_users-redis",
    "tcp_users-mongo",
  ]);
  assert.deepEqual(users.clusters.map((c) => c.name), [
    "local_service",
    "locations",
    "users-redis",
    "users-mongo",
  ]);
  assert.deepEqual(users.endpoints, ["locations", "users-redis", "users-mongo"]);
  assert.deepEqual(users.apiListeners.map((l) => l.name), ["locations"]);
  // the local service calling its egress is internal: its x-envoy-* headers and x-request-id are kept
  const egressHcm =
    (users.listeners[1] as { filter_chains: { filters: { typed_config: Record<string, unknown> }[] }[] })
      .filter_chains[0].filters[0].typed_config;
  assert.equal(egressHcm.use_remote_address, true);
  // the data stores: Mongo behind mongo_proxy with a connection rate limit, Redis behind redis_proxy on a ring
  const chain = (
    name: string,
  ) => ((users.listeners.find((l) => l.name === name) as { filter_chains: { filters: { name: string }[] }[] })
    .filter_chains[0].filters.map((f) => f.name));
  assert.deepEqual(chain("tcp_users-mongo"), [
    "envoy.filters.network.local_ratelimit",
    "envoy.filters.network.mongo_proxy",
    "envoy.filters.network.tcp_proxy",
  ]);
  assert.deepEqual(chain("tcp_users-redis"), ["envoy.filters.network.redis_proxy"]);
  const clusterOf = (n: string) => users.clusters.find((c) => c.name === n) as Record<string, unknown>;
  assert.equal(clusterOf("users-redis").lb_policy, "RING_HASH");
  assert.deepEqual(clusterOf("users-mongo").circuit_breakers, { thresholds: [{ max_connections: 64 }] });
  const egress = users.routes.find((r) => r.name === "egress")!;
  const vh = (egress.virtual_hosts as Record<string, unknown>[])[0];
  assert.deepEqual(vh.domains, ["locations", "locations:9001"]);
  const route = (vh.routes as Record<string, unknown>[])[0].route as Record<string, unknown>;
  assert.deepEqual(route.timeout, "2s");
  assert.deepEqual(route.retry_policy, { retry_on: "5xx,connect-failure,refused-stream", num_retries: 2 });
  const locations = users.clusters.find((c) => c.name === "locations")!;
  // manifest: max_requests 500; the rest from the defaults
  assert.deepEqual(locations.circuit_breakers, {
    thresholds: [{ max_connections: 1024, max_pending_requests: 1024, max_requests: 500, max_retries: 3 }],
  });
  assert.deepEqual(locations.outlier_detection, {
    consecutive_5xx: 3,
    base_ejection_time: "30s",
    max_ejection_percent: 10,
  });
  assert("typed_extension_protocol_options" in locations, "locations speaks gRPC: HTTP/2 upstream");
  const leaf = b.nodes.get("locations")!;
  assert.deepEqual(leaf.listeners.map((l) => l.name), ["ingress"]);
  assert.deepEqual(leaf.clusters.map((c) => c.name), ["local_service"]);
  const edge = b.nodes.get("edge")!;
  assert.deepEqual(edge.clusters.map((c) => c.name), ["locations", "users"]);
});

Deno.test("builder: the same inputs build the same bytes", async () => {
  const a = JSON.stringify([...build(await meshInputs()).nodes]);
  const b = JSON.stringify([...build(await meshInputs()).nodes]);
  assert.deepEqual(a, b);
});

Deno.test("inputs: errors carry file:line:col and the field path; bad manifests are rejected alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/m`);
    await Deno.writeTextFile(`${dir}/d.yaml`, "limits:\n  timeout: { max: 10s }\n  retries: { max: 3 }\n");
    await Deno.writeTextFile(`${dir}/m/a.yaml`, "service: a\nport: 8080\nupstreams:\n  - service: b\n");
    await Deno.writeTextFile(
      `${dir}/m/b.yaml`,
      "service: b\nport: 8081\nupstreams:\n  - service: a\n    timeout: 30s\n    retries: 9\n",
    );
    await Deno.writeTextFile(`${dir}/m/c.yaml`, "service: c\nport: 8082\nupstreams:\n  - service: nope\n");
    await Deno.writeTextFile(`${dir}/m/d.yaml`, "service: d\nport: 99999\ncolour: blue\n");
    const set = await loadInputs({ manifests: `${dir}/m`, defaults: `${dir}/d.yaml` });
    const lines = set.errors.map((e) =>
      `${e.file.slice(dir.length + 1)}:${e.line}:${e.column}: ${e.path}: ${e.message}`
    );
    assert.deepEqual(lines, [
      "m/b.yaml:5:14: upstreams[0].timeout: timeout 30000ms is above the maximum 10000ms",
      "m/b.yaml:6:14: upstreams[0].retries: retries 9 is above the maximum 3",
      "m/c.yaml:4:14: upstreams[0].service: No manifest for service 'nope'",
      "m/d.yaml:2:7: port: Too big: expected number to be <=65535",
      "m/d.yaml:3:1: colour: Unknown field",
    ]);
    assert.deepEqual([...set.manifests.keys()], ["a"]);
    assert.deepEqual([...set.rejected].map((f) => f.slice(dir.length + 1)).sort(), [
      "m/b.yaml",
      "m/c.yaml",
      "m/d.yaml",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("builder: canary_percent splits the egress route over the canary subsets of one cluster", async () => {
  const inputs = await meshInputs();
  const users = inputs.manifests.get("users")!;
  inputs.manifests.set("users", { ...users, upstreams: [{ ...users.upstreams[0], canary_percent: 5 }] });
  const node = build(inputs).nodes.get("users")!;
  const egress = node.routes.find((r) => r.name === "egress")!;
  const route =
    ((egress.virtual_hosts as Record<string, unknown>[])[0].routes as Record<string, unknown>[])[0]
      .route as Record<string, unknown>;
  const meta = (canary: boolean) => ({ filter_metadata: { "envoy.lb": { canary } } });
  assert.deepEqual(route.weighted_clusters, {
    clusters: [
      { name: "locations", weight: 5, metadata_match: meta(true) },
      { name: "locations", weight: 95, metadata_match: meta(false) },
    ],
  });
  assert.equal(route.cluster, undefined);
  const cluster = node.clusters.find((c) => c.name === "locations")!;
  assert.deepEqual(cluster.lb_subset_config, {
    fallback_policy: "ANY_ENDPOINT",
    subset_selectors: [{ keys: ["canary"] }],
  });
  // proxyless gRPC clients get the plain cluster (they have no subsets)
  const api = node.apiListeners[0] as { api_listener: { api_listener: { route_config: unknown } } };
  assert.match(JSON.stringify(api.api_listener.api_listener.route_config), /"cluster":"locations"/);
  for (const x of node.routes) assert.ok(parseResource("route", x.name as string, x).ok);
  for (const x of node.clusters) assert.ok(parseResource("cluster", x.name as string, x).ok);
});
