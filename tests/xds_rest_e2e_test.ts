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
import {
  edsCluster,
  endpoints,
  launchNuncio,
  loadLoop,
  rdsListener,
  restSource as rest,
  routes,
  startNuncio,
  staticCluster,
} from "./xds_e2e_helpers.ts";
import { startRestXdsServer } from "./xds_rest_server.ts";

function bootstrap(xdsPort: number, adminPort: number, source: Record<string, unknown> = rest): string {
  return stringify({
    node: { id: "node-1", cluster: "edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    dynamic_resources: { lds_config: source, cds_config: source },
    static_resources: { clusters: [staticCluster("xds", xdsPort)] },
  });
}

const listener = (port: number, statPrefix: string) => rdsListener(port, statPrefix, rest);
const webCluster = (lbPolicy = "ROUND_ROBIN") => edsCluster(rest, lbPolicy);

for (const concurrency of [1, 2]) {
  Deno.test(`xDS over REST end to end (--concurrency ${concurrency})`, async () => {
    await using a = startOrigin("a");
    await using b = startOrigin("b");
    await using xds = await startRestXdsServer();
    const port = refusedPort();
    const adminPort = refusedPort();
    await xds.serve("clusters", "c1", [webCluster()]);
    await xds.serve("endpoints", "e1", [endpoints([a.port])]);
    await xds.serve("listeners", "l1", [listener(port, "ingress")]);
    await xds.serve("routes", "r1", [routes("r1")]);
    // ready once CDS and LDS (and the listener's routes) arrived
    await using nuncio = await startNuncio(bootstrap(xds.port, adminPort), adminPort, concurrency);
    const { admin, stat } = nuncio;
    await waitFor("the dynamic listener", async () => {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/x`);
        return (await r.text()) === "hello from a" && r.headers.get("x-routes") === "r1";
      } catch {
        return false;
      }
    }, 10_000);
    const load = loadLoop(port, 1);

    // EDS: the endpoints move to origin b
    await xds.serve("endpoints", "e2", [endpoints([b.port])]);
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
    await waitFor("traffic without the server", () => (load.seen.get("hello from b|r2") ?? 0) > atKill + 50);
    await waitFor("connected_state 0", async () => (await stat("control_plane.connected_state")) === 0);
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
    const clusters = dump.configs.find((c: { "@type": string }) => c["@type"].endsWith("ClustersConfigDump"));
    assert.equal(clusters.version_info, "c1");
    assert.equal(clusters.dynamic_active_clusters[0].cluster.name, "web");
    const listeners = dump.configs.find((c: { "@type": string }) =>
      c["@type"].endsWith("ListenersConfigDump")
    );
    assert.equal(listeners.version_info, "l2");
    const eds = dump.configs.find((c: { "@type": string }) => c["@type"].endsWith("EndpointsConfigDump"));
    assert.equal(eds.dynamic_endpoint_configs[0].version_info, "e2");
  });
}

Deno.test("xDS: /ready answers 503 until the initial fetch is done (here: initial_fetch_timeout passes)", async () => {
  await using xds = await startRestXdsServer(); // serves nothing: every poll answers 304
  const adminPort = refusedPort();
  const text = bootstrap(xds.port, adminPort, { ...rest, initial_fetch_timeout: "1s" });
  await using _nuncio = await launchNuncio(text, adminPort, 1);
  const ready = () =>
    fetch(`http://127.0.0.1:${adminPort}/ready`).then(async (r) => `${r.status} ${(await r.text()).trim()}`)
      .catch(() => "down");
  await waitFor("admin", async () => (await ready()) !== "down", 10_000);
  assert.equal(await ready(), "503 INITIALIZING");
  await waitFor("LIVE after initial_fetch_timeout", async () => (await ready()) === "200 LIVE", 10_000);
});
