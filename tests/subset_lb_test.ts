/**
 * Canary routing end to end: nuncio (main.ts subprocess) in front of real Deno.serve origins whose endpoints carry
 * `envoy.lb` metadata (`canary: true` / `canary: false`), a cluster with lb_subset_config, and
 * - a route whose weighted_clusters send 10% with metadata_match canary=true and 90% with canary=false;
 * - envoy.filters.http.header_to_metadata turning `x-canary` into `envoy.lb.canary = true` (a PROTOBUF_VALUE), which
 *   overrides the route's metadata_match so those requests always reach canary hosts;
 * - a route asking for a subset no host has, served by the cluster's DEFAULT_SUBSET fallback;
 * - envoy.filters.http.header_mutation adding and removing headers both ways (filter and route level);
 * - the same over xDS: EDS from a grpc-js management server (tests/xds_grpc_server.ts) flips which host is the
 *   canary, and requests follow (--concurrency 2: every worker rebuilds its subsets).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { type Origin, refusedPort, startOrigin } from "./helpers.ts";
import { waitFor } from "./health_helpers.ts";
import { AutoXdsServer } from "./xds_grpc_driver.ts";
import { startNuncio, staticCluster as xdsCluster, TYPES } from "./xds_e2e_helpers.ts";

type Obj = Record<string, unknown>;

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const H2M = "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config";
const MUTATION = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
const MUTATION_PER_ROUTE =
  "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute";
/** A serialized google.protobuf.Value { bool_value: true }, base64: header_to_metadata's way to a boolean. */
const PB_TRUE = btoa("\x20\x01");

/** An origin answering "hello from <name>" that also sends a header the proxy must remove. */
function origin(name: string): Origin {
  return startOrigin(
    name,
    () => new Response(`hello from ${name}`, { headers: { "x-origin": name, "x-origin-secret": "s3cret" } }),
  );
}

/** An lb_endpoint for `port` with `envoy.lb` metadata. */
function endpoint(port: number, lb: Obj): Obj {
  return {
    endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } },
    metadata: { filter_metadata: { "envoy.lb": lb } },
  };
}

const LB_SUBSET = {
  fallback_policy: "DEFAULT_SUBSET",
  default_subset: { canary: false },
  subset_selectors: [{ keys: ["canary"] }, { keys: ["version"] }],
};

const lbMatch = (fields: Obj) => ({ filter_metadata: { "envoy.lb": fields } });

/** The HTTP filters: x-canary -> envoy.lb.canary=true, header mutations both ways, router. */
const HTTP_FILTERS = [
  {
    name: "envoy.filters.http.header_to_metadata",
    typed_config: {
      "@type": H2M,
      request_rules: [{
        header: "x-canary",
        on_header_present: {
          metadata_namespace: "envoy.lb",
          key: "canary",
          value: PB_TRUE,
          type: "PROTOBUF_VALUE",
          encode: "BASE64",
        },
        remove: true,
      }],
    },
  },
  {
    name: "envoy.filters.http.header_mutation",
    typed_config: {
      "@type": MUTATION,
      mutations: {
        request_mutations: [
          { append: { header: { key: "x-mutated", value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" } } },
          { remove: "x-internal-secret" },
        ],
        response_mutations: [
          { append: { header: { key: "x-proxy", value: "nuncio" } } },
          { remove: "x-origin-secret" },
        ],
      },
    },
  },
  { name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } },
];

/** The routes: /split (10% canary by weight), /fallback (an empty subset), everything else (stable unless x-canary). */
function routeConfig(cluster: string): Obj {
  return {
    name: "routes",
    virtual_hosts: [{
      name: "any",
      domains: ["*"],
      routes: [
        {
          match: { prefix: "/split" },
          route: {
            weighted_clusters: {
              clusters: [
                { name: cluster, weight: 10, metadata_match: lbMatch({ canary: true }) },
                { name: cluster, weight: 90, metadata_match: lbMatch({ canary: false }) },
              ],
            },
          },
        },
        { match: { prefix: "/fallback" }, route: { cluster, metadata_match: lbMatch({ version: "v9" }) } },
        {
          match: { prefix: "/" },
          route: { cluster, metadata_match: lbMatch({ canary: false }) },
          typed_per_filter_config: {
            "envoy.filters.http.header_mutation": {
              "@type": MUTATION_PER_ROUTE,
              mutations: {
                response_mutations: [{ append: { header: { key: "x-route-level", value: "root" } } }],
              },
            },
          },
        },
      ],
    }],
  };
}

function listener(port: number, cluster: string): Obj {
  return {
    name: "ingress",
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: "ingress",
          route_config: routeConfig(cluster),
          http_filters: HTTP_FILTERS,
        },
      }],
    }],
  };
}

const admin = (port: number) => ({ address: { socket_address: { address: "127.0.0.1", port_value: port } } });

/** `n` GETs of `path` over keep-alive connections (`clients` at a time); the x-origin of each answer. */
async function origins(
  port: number,
  path: string,
  n: number,
  headers: Obj = {},
  clients = 2,
): Promise<string[]> {
  const out: string[] = [];
  const one = async (count: number) => {
    const client = Deno.createHttpClient({});
    try {
      for (let i = 0; i < count; i++) {
        const r = await fetch(`http://127.0.0.1:${port}${path}`, { client, headers: headers as HeadersInit });
        await r.body?.cancel();
        assert.equal(r.status, 200, `${path}: ${r.status}`);
        out.push(r.headers.get("x-origin") ?? "");
      }
    } finally {
      client.close();
    }
  };
  await Promise.all(
    Array.from({ length: clients }, (_, i) => one(Math.floor(n / clients) + (i < n % clients ? 1 : 0))),
  );
  return out;
}

const count = (xs: string[], pred: (x: string) => boolean) => xs.filter(pred).length;
const isCanary = (x: string) => x.startsWith("canary");

Deno.test("subset load balancing: weighted canary share, header_to_metadata, fallback, header_mutation", async () => {
  await using canary1 = origin("canary1");
  await using canary2 = origin("canary2");
  await using stable1 = origin("stable1");
  await using stable2 = origin("stable2");
  const port = refusedPort();
  const adminPort = refusedPort();
  const bootstrap = stringify({
    admin: admin(adminPort),
    static_resources: {
      listeners: [listener(port, "svc")],
      clusters: [{
        name: "svc",
        connect_timeout: "1s",
        lb_subset_config: LB_SUBSET,
        load_assignment: {
          cluster_name: "svc",
          endpoints: [{
            lb_endpoints: [
              endpoint(canary1.port, { canary: true, version: "v2" }),
              endpoint(canary2.port, { canary: true, version: "v2" }),
              endpoint(stable1.port, { canary: false, version: "v1" }),
              endpoint(stable2.port, { canary: false, version: "v1" }),
            ],
          }],
        },
      }],
    },
  });
  await using nuncio = await startNuncio(bootstrap, adminPort, 1);

  // 10% of /split by weight goes to the canary subset (binomial: 100 expected, sd ~9.5)
  const split = await origins(port, "/split", 1000);
  const canaries = count(split, isCanary);
  assert.ok(canaries >= 55 && canaries <= 150, `${canaries} of 1000 went to canary hosts`);
  assert.ok(count(split, (x) => x === "canary1") > 0 && count(split, (x) => x === "canary2") > 0);
  assert.equal(count(split, (x) => x === ""), 0);

  // the route asks for canary=false; x-canary turns into envoy.lb.canary=true, which wins
  const stable = await origins(port, "/", 20);
  assert.equal(count(stable, isCanary), 0, stable.join());
  const flagged = await origins(port, "/", 20, { "x-canary": "1" });
  assert.equal(count(flagged, isCanary), 20, flagged.join());
  assert.equal(
    canary1.requests.concat(canary2.requests).some((r) => r.headers.has("x-canary")),
    false,
    "header_to_metadata's remove: x-canary does not reach the origin",
  );

  // version v9: no host has it; DEFAULT_SUBSET (canary=false) serves
  const fallback = await origins(port, "/fallback", 10);
  assert.equal(count(fallback, isCanary), 0, fallback.join());

  // header_mutation: request headers added and removed on the way up, response headers on the way down
  const r = await fetch(`http://127.0.0.1:${port}/`, {
    headers: { "x-internal-secret": "1", connection: "close" },
  });
  await r.body?.cancel();
  assert.equal(r.headers.get("x-proxy"), "nuncio");
  assert.equal(r.headers.get("x-route-level"), "root");
  assert.equal(r.headers.get("x-origin-secret"), null);
  const seen = [stable1, stable2].flatMap((o) => o.requests).at(-1)!;
  assert.equal(seen.headers.get("x-mutated"), "127.0.0.1");
  assert.equal(seen.headers.has("x-internal-secret"), false);

  assert.equal(await nuncio.stat("cluster.svc.lb_subsets_active"), 4);
  assert.equal(await nuncio.stat("cluster.svc.lb_subsets_created"), 4);
  assert.equal(await nuncio.stat("cluster.svc.lb_subsets_selected"), 1000 + 20 + 20 + 1);
  assert.equal(await nuncio.stat("cluster.svc.lb_subsets_fallback"), 10);
  assert.equal(await nuncio.stat("cluster.svc.lb_subsets_fallback_panic"), 0);
  await nuncio.stop();
});

Deno.test("subset load balancing over EDS (grpc-js ADS server): a host's canary flag changes", async () => {
  await using a = origin("a");
  await using b = origin("b");
  await using xds = await AutoXdsServer.start();
  const port = refusedPort();
  const adminPort = refusedPort();
  const cla = (canaryA: boolean) => ({
    cluster_name: "svc",
    endpoints: [{
      lb_endpoints: [endpoint(a.port, { canary: canaryA }), endpoint(b.port, { canary: !canaryA })],
    }],
  });
  await xds.set(TYPES.endpoint, "e1", [cla(true)]);
  const bootstrap = stringify({
    node: { id: "node-1", cluster: "edge" },
    admin: admin(adminPort),
    dynamic_resources: {
      ads_config: {
        api_type: "GRPC",
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
      },
    },
    static_resources: {
      listeners: [listener(port, "svc")],
      clusters: [
        xdsCluster("xds", xds.port, true),
        {
          name: "svc",
          type: "EDS",
          connect_timeout: "1s",
          lb_subset_config: LB_SUBSET,
          eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" } },
        },
      ],
    },
  });
  await using nuncio = await startNuncio(bootstrap, adminPort, 2);

  assert.deepEqual([...new Set(await origins(port, "/", 10, { "x-canary": "1" }))], ["a"]);
  assert.deepEqual([...new Set(await origins(port, "/", 10))], ["b"]);

  // b becomes the canary: the same hosts (and connections) with new metadata
  await xds.set(TYPES.endpoint, "e2", [cla(false)]);
  await waitFor(
    "the canary to move to b",
    async () => (await origins(port, "/", 4, { "x-canary": "1" }, 1)).every((x) => x === "b"),
    15_000,
  );
  assert.deepEqual([...new Set(await origins(port, "/", 10, { "x-canary": "1" }))], ["b"]);
  assert.deepEqual([...new Set(await origins(port, "/", 10))], ["a"]);
  assert.equal(await nuncio.stat("cluster.svc.lb_subsets_active"), 2);
  assert.equal(await nuncio.stat("cluster.svc.update_success"), 2);
  await nuncio.stop();
});
