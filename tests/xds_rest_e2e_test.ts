/**
 * nuncio driven by an independent REST-JSON management server (python3 http.server), end to end: a tiny
 * bootstrap; CDS (an EDS cluster), EDS, LDS (a listener whose routes come from RDS) and RDS; endpoint, route and
 * listener changes under load with zero failed requests; an invalid update NACKed with its reason while the last
 * good config serves; the server killed (traffic continues) and back (a new version applies). In-process
 * (--concurrency 1) and with two workers.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import { refusedPort, startOrigin } from "./helpers.ts";
import { startRestXdsServer } from "./xds_rest_server.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

const rest = {
  resource_api_version: "V3",
  api_config_source: {
    api_type: "REST",
    transport_api_version: "V3",
    cluster_names: ["xds"],
    refresh_delay: "0.05s",
  },
};

function bootstrap(xdsPort: number, adminPort: number, source: Record<string, unknown> = rest): string {
  return stringify({
    node: { id: "node-1", cluster: "edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    dynamic_resources: { lds_config: source, cds_config: source },
    static_resources: {
      clusters: [{
        name: "xds",
        type: "STATIC",
        connect_timeout: "1s",
        load_assignment: {
          cluster_name: "xds",
          endpoints: [{
            lb_endpoints: [{
              endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: xdsPort } } },
            }],
          }],
        },
      }],
    },
  });
}

const listener = (port: number, statPrefix: string) => ({
  name: "ingress",
  address: { socket_address: { address: "127.0.0.1", port_value: port } },
  filter_chains: [{
    filters: [{
      name: "envoy.filters.network.http_connection_manager",
      typed_config: {
        "@type": HCM,
        stat_prefix: statPrefix,
        rds: { route_config_name: "routes", config_source: rest },
        http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
      },
    }],
  }],
});

const routes = (version: string) => ({
  name: "routes",
  virtual_hosts: [{
    name: "any",
    domains: ["*"],
    routes: [{ match: { prefix: "/" }, route: { cluster: "web" } }],
    response_headers_to_add: [{ header: { key: "x-routes", value: version } }],
  }],
});

const webCluster = (lbPolicy = "ROUND_ROBIN") => ({
  name: "web",
  type: "EDS",
  connect_timeout: "1s",
  lb_policy: lbPolicy,
  eds_cluster_config: { eds_config: rest },
});

const endpoints = (port: number) => ({
  cluster_name: "web",
  endpoints: [{
    lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
  }],
});

/** Sequential keep-alive requests until stopped; counts answers by origin/routes version and failures. */
function loadLoop(port: number) {
  const seen = new Map<string, number>();
  const failures: string[] = [];
  let stop = false;
  let last = "";
  const done = (async () => {
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
  })();
  return {
    seen,
    failures,
    get last() {
      return last;
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

for (const concurrency of [1, 2]) {
  Deno.test(`xDS over REST end to end (--concurrency ${concurrency})`, async () => {
    await using a = startOrigin("a");
    await using b = startOrigin("b");
    await using xds = await startRestXdsServer();
    const port = refusedPort();
    const adminPort = refusedPort();
    await xds.serve("clusters", "c1", [webCluster()]);
    await xds.serve("endpoints", "e1", [endpoints(a.port)]);
    await xds.serve("listeners", "l1", [listener(port, "ingress")]);
    await xds.serve("routes", "r1", [routes("r1")]);
    const dir = await Deno.makeTempDir({ prefix: "nuncio_xds_e2e_" });
    await Deno.writeTextFile(`${dir}/bootstrap.yaml`, bootstrap(xds.port, adminPort));
    const proc = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "-c",
        `${dir}/bootstrap.yaml`,
        "--concurrency",
        String(concurrency),
        "-l",
        "warn",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const stderr = new Response(proc.stderr).text();
    const admin = (path: string) => fetch(`http://127.0.0.1:${adminPort}${path}`).then((r) => r.text());
    const stat = async (name: string) => {
      const line = (await admin(`/stats?filter=^${name.replaceAll(".", "\\.")}$`)).trim();
      return Number(line.split(": ")[1]);
    };
    try {
      // ready once CDS and LDS (and the listener's routes) arrived
      await waitFor(
        "/ready LIVE",
        () => admin("/ready").then((t) => t === "LIVE\n").catch(() => false),
        15_000,
      );
      await waitFor("the dynamic listener", async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/x`);
          return (await r.text()) === "hello from a" && r.headers.get("x-routes") === "r1";
        } catch {
          return false;
        }
      }, 10_000);
      const load = loadLoop(port);

      // EDS: the endpoints move to origin b
      await xds.serve("endpoints", "e2", [endpoints(b.port)]);
      await waitFor("EDS v2", () => load.last.startsWith("hello from b"), 10_000);
      // RDS: a new route config version reaches the open keep-alive connection
      await xds.serve("routes", "r2", [routes("r2")]);
      await waitFor("RDS v2", () => load.last === "hello from b|r2", 10_000);
      // LDS: the listener is replaced (new stat prefix); the old one drains
      await xds.serve("listeners", "l2", [listener(port, "ingress_v2")]);
      await waitFor("LDS v2", async () => (await stat("http.ingress_v2.downstream_rq_total")) > 0, 10_000);

      // an invalid CDS update is NACKed with its reason; the last good config keeps serving
      await xds.serve("clusters", "c-bad", [webCluster("BOGUS")]);
      await waitFor(
        "the NACK",
        async () =>
          (await xds.requests()).some((r) =>
            String(r.type_url).endsWith("Cluster") && r.response_nonce !== undefined &&
            String((r.error_detail as { message?: string } | undefined)?.message ?? "").includes("lb_policy")
          ),
        10_000,
      );
      const nack = (await xds.requests()).filter((r) =>
        r.error_detail && String(r.type_url).endsWith("Cluster")
      )[0];
      assert.equal(nack.version_info, "c1", "a NACK carries the last good version");
      assert.match(String((nack.error_detail as { message: string }).message), /Cluster "web": lb_policy: /);
      assert.ok((await stat("cluster_manager.cds.update_rejected")) >= 1);
      const before = load.seen.get("hello from b|r2") ?? 0;
      await waitFor("traffic after the NACK", () => (load.seen.get("hello from b|r2") ?? 0) > before + 20);

      // the management server dies: traffic continues on the last good config
      await xds.kill();
      const atKill = load.seen.get("hello from b|r2") ?? 0;
      await waitFor("traffic without the server", () =>
        (load.seen.get("hello from b|r2") ?? 0) > atKill + 50);
      await waitFor("connected_state 0", async () =>
        (await stat("control_plane.connected_state")) === 0);
      // ... and comes back with a new route version, which applies
      await xds.serve("routes", "r3", [routes("r3")]);
      await xds.restart();
      await waitFor("RDS v3 after the restart", () => load.last === "hello from b|r3", 15_000);

      await load.stop();
      assert.deepEqual(load.failures, [], "no request failed during any update");
      assert.ok((await stat("listener_manager.lds.update_success")) >= 2);
      // server-wide counts, whatever the number of workers
      assert.equal(await stat("listener_manager.listener_added"), 1);
      assert.equal(await stat("listener_manager.listener_modified"), 1);
      assert.equal(await stat("listener_manager.total_listeners_active"), 1);
      // EDS: counted once per applied assignment, whatever the number of workers (the subscription's own
      // counters stay private); RDS polls that answer 304 count as successes too, as Envoy's REST polling does
      assert.equal(await stat("cluster.web.update_success"), 2);
      assert.ok((await stat("http.ingress.rds.routes.update_success")) >= 3);
      // /config_dump shows the dynamic resources with their versions
      const dump = JSON.parse(await admin("/config_dump?include_eds"));
      const clusters = dump.configs.find((c: { "@type": string }) =>
        c["@type"].endsWith("ClustersConfigDump")
      );
      assert.equal(clusters.version_info, "c1");
      assert.equal(clusters.dynamic_active_clusters[0].cluster.name, "web");
      const listeners = dump.configs.find((c: { "@type": string }) =>
        c["@type"].endsWith("ListenersConfigDump")
      );
      assert.equal(listeners.version_info, "l2");
      const eds = dump.configs.find((c: { "@type": string }) => c["@type"].endsWith("EndpointsConfigDump"));
      assert.equal(eds.dynamic_endpoint_configs[0].version_info, "e2");
    } finally {
      proc.kill("SIGTERM");
      const status = await proc.status;
      const err = await stderr;
      await Deno.remove(dir, { recursive: true });
      assert.equal(status.code, 0, err);
    }
  });
}

Deno.test("xDS: /ready answers 503 until the initial fetch is done (here: initial_fetch_timeout passes)", async () => {
  await using xds = await startRestXdsServer(); // serves nothing: every poll answers 304
  const adminPort = refusedPort();
  const dir = await Deno.makeTempDir({ prefix: "nuncio_xds_ready_" });
  const text = bootstrap(xds.port, adminPort, { ...rest, initial_fetch_timeout: "1s" });
  await Deno.writeTextFile(`${dir}/bootstrap.yaml`, text);
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "-c", `${dir}/bootstrap.yaml`, "--concurrency", "1", "-l", "warn"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(proc.stderr).text();
  const ready = () =>
    fetch(`http://127.0.0.1:${adminPort}/ready`).then(async (r) => `${r.status} ${(await r.text()).trim()}`)
      .catch(() => "down");
  try {
    await waitFor("admin", async () => (await ready()) !== "down", 10_000);
    assert.equal(await ready(), "503 INITIALIZING");
    await waitFor("LIVE after initial_fetch_timeout", async () => (await ready()) === "200 LIVE", 10_000);
  } finally {
    proc.kill("SIGTERM");
    const status = await proc.status;
    const err = await stderr;
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, err);
  }
});
