/**
 * Shared pieces of the xDS end-to-end tests (ADS/gRPC, REST and files): resources built around one config source,
 * nuncio as a `main.ts` subprocess with its admin API, and a keep-alive load loop that counts failures.
 */
import assert from "node:assert/strict";
import { waitFor } from "./health_helpers.ts";
import { spawnNuncio, staticCluster as staticHosts } from "./helpers.ts";

export const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
export const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
export const TYPES = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
} as const;

type Obj = Record<string, unknown>;

/** A REST-JSON config source polling the static cluster "xds" every 50 ms. */
export const restSource: Obj = {
  resource_api_version: "V3",
  api_config_source: {
    api_type: "REST",
    transport_api_version: "V3",
    cluster_names: ["xds"],
    refresh_delay: "0.05s",
  },
};

/** A listener on 127.0.0.1:`port` running an HTTP connection manager with `routeSource` (rds or route_config). */
function hcmListener(port: number, statPrefix: string, routeSource: Obj, name: string): Obj {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: statPrefix,
          ...routeSource,
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
        },
      }],
    }],
  };
}

/** A listener on 127.0.0.1:`port` whose HTTP connection manager takes route config "routes" from `rds`. */
export function rdsListener(port: number, statPrefix: string, rds: Obj, name = "ingress"): Obj {
  return hcmListener(port, statPrefix, { rds: { route_config_name: "routes", config_source: rds } }, name);
}

/** A listener with inline routes to `cluster` (tagged with `x-routes: <tag>`). */
export function staticRouteListener(port: number, statPrefix: string, cluster: string, tag: string): Obj {
  return hcmListener(port, statPrefix, { route_config: routes(tag, cluster) }, "ingress");
}

/** Route config "routes": everything to `cluster`, each response tagged `x-routes: <version>`. */
export function routes(version: string, cluster = "web"): Obj {
  return {
    name: "routes",
    virtual_hosts: [{
      name: "any",
      domains: ["*"],
      routes: [{ match: { prefix: "/" }, route: { cluster } }],
      response_headers_to_add: [{ header: { key: "x-routes", value: version } }],
    }],
  };
}

/** EDS cluster `name` whose endpoints come from `eds`. */
export function edsCluster(eds: Obj, lbPolicy: string | number = "ROUND_ROBIN", name = "web"): Obj {
  return {
    name,
    type: "EDS",
    connect_timeout: "1s",
    lb_policy: lbPolicy,
    eds_cluster_config: { eds_config: eds },
  };
}

/** A ClusterLoadAssignment of `cluster` with one endpoint per port. */
export function endpoints(ports: number[], cluster = "web"): Obj {
  return {
    cluster_name: cluster,
    endpoints: [{
      lb_endpoints: ports.map((port) => ({
        endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } },
      })),
    }],
  };
}

/** A STATIC cluster at 127.0.0.1:`port` (`h2`: Envoy's explicit HTTP/2 protocol options, as gRPC needs). */
export function staticCluster(name: string, port: number, h2 = false): Obj {
  return staticHosts(
    name,
    [port],
    h2
      ? {
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
      }
      : {},
  );
}

/** nuncio running as a subprocess. */
export interface Nuncio extends AsyncDisposable {
  admin(path: string): Promise<string>;
  /** A counter or gauge from /stats (NaN when absent). */
  stat(name: string): Promise<number>;
  /** SIGTERM, then asserts a clean exit (stderr in the message otherwise). */
  stop(): Promise<void>;
  /** What nuncio wrote to stderr so far is only known after stop(). */
  stderr: Promise<string>;
}

/** Writes `bootstrap` to a temp dir and runs `main.ts -c` on it (`-l warn`); waits for nothing. */
export async function launchNuncio(
  bootstrap: string,
  adminPort: number,
  concurrency: number,
): Promise<Nuncio> {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_xds_e2e_" });
  const file = `${dir}/bootstrap.yaml`;
  await Deno.writeTextFile(file, bootstrap);
  const child = spawnNuncio(["-c", file, "--concurrency", String(concurrency), "-l", "warn"]);
  const admin = (path: string) => fetch(`http://127.0.0.1:${adminPort}${path}`).then((r) => r.text());
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.proc.kill("SIGTERM");
    } catch {
      // already gone
    }
    const { code, stderr } = await child.done;
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, stderr);
  };
  return {
    admin,
    async stat(name) {
      const line = (await admin(`/stats?filter=^${name.replaceAll(".", "\\.")}$`)).trim();
      return Number(line.split(": ")[1]);
    },
    stop,
    stderr: child.stderr,
    [Symbol.asyncDispose]: stop,
  };
}

/** `launchNuncio`, then resolves once /ready says LIVE. */
export async function startNuncio(
  bootstrap: string,
  adminPort: number,
  concurrency: number,
): Promise<Nuncio> {
  const n = await launchNuncio(bootstrap, adminPort, concurrency);
  try {
    await waitFor(
      "/ready LIVE",
      () => n.admin("/ready").then((t) => t === "LIVE\n").catch(() => false),
      15_000,
    );
  } catch (e) {
    await n.stop().catch(() => {});
    throw e;
  }
  return n;
}

/** One GET /x on `port` on a new connection: "<body>|<x-routes>" (throws when the connection fails). */
export async function getOnce(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/x`, { headers: { connection: "close" } });
  return `${await r.text()}|${r.headers.get("x-routes")}`;
}

/** A load loop: sequential keep-alive requests until stopped; answers counted by "body|x-routes". */
export interface LoadLoop {
  seen: Map<string, number>;
  failures: string[];
  readonly last: string;
  /** How many answers were `key` so far. */
  count(key: string): number;
  /** Waits until `n` more answers than now were `key`. */
  more(key: string, n: number, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `clients` concurrent sequential keep-alive request loops against `port`. */
export function loadLoop(port: number, clients = 2): LoadLoop {
  const seen = new Map<string, number>();
  const failures: string[] = [];
  let stop = false;
  let last = "";
  const one = async () => {
    const client = Deno.createHttpClient({});
    try {
      while (!stop) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/x`, { client });
          const body = await r.text();
          if (r.status !== 200) failures.push(`${r.status} ${body}`);
          last = `${body}|${r.headers.get("x-routes")}`;
          seen.set(last, (seen.get(last) ?? 0) + 1);
        } catch (e) {
          failures.push(String(e));
        }
      }
    } finally {
      client.close();
    }
  };
  const done = Promise.all(Array.from({ length: clients }, one));
  const count = (key: string) => seen.get(key) ?? 0;
  return {
    seen,
    failures,
    get last() {
      return last;
    },
    count,
    async more(key, n, ms = 10_000) {
      const at = count(key);
      await waitFor(`${n} more "${key}"`, () => count(key) >= at + n, ms);
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}
