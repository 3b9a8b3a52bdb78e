/**
 * nuncio configured from files (`path_config_source`), end to end through main.ts: LDS and CDS from the
 * bootstrap, EDS and RDS named by the resources, each a DiscoveryResponse file replaced by an atomic rename while
 * a load loop runs (zero failed requests); RDS through a `watched_directory` whose `..data` symlink is swapped as
 * Kubernetes updates a ConfigMap; a bad file (a field nuncio rejects, or text that is not YAML) rejected with
 * `update_rejected` while the last good config serves, then a good file applies. In-process and with two workers.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import { refusedPort, startOrigin } from "./helpers.ts";
import {
  edsCluster,
  endpoints,
  getOnce,
  loadLoop,
  rdsListener,
  routes,
  startNuncio,
  TYPES,
} from "./xds_e2e_helpers.ts";

type Obj = Record<string, unknown>;

/** A DiscoveryResponse file body. */
function response(type: string, version: string, resources: Obj[]): string {
  return stringify({ version_info: version, resources: resources.map((r) => ({ "@type": type, ...r })) });
}

/** Writes `text` next to `path` and renames it into place (Envoy reloads on moves, not in-place writes). */
async function moveIntoPlace(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

/** A ConfigMap-style directory: `<dir>/rds.yaml -> ..data/rds.yaml`, `..data -> ..<version>`. */
async function configMap(dir: string, version: string, text: string): Promise<void> {
  await Deno.mkdir(`${dir}/..${version}`);
  await Deno.writeTextFile(`${dir}/..${version}/rds.yaml`, text);
  await Deno.symlink(`..${version}`, `${dir}/..data_tmp`);
  await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
  await Deno.symlink("..data/rds.yaml", `${dir}/rds.yaml`).catch((e) => {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  });
}

for (const concurrency of [1, 2]) {
  Deno.test(`xDS from files end to end (--concurrency ${concurrency})`, async () => {
    await using a = startOrigin("a");
    await using b = startOrigin("b");
    const dir = await Deno.makeTempDir({ prefix: "nuncio_xds_files_" });
    const port = refusedPort();
    const adminPort = refusedPort();
    const lds = `${dir}/lds.yaml`;
    const cds = `${dir}/cds.json`;
    const eds = `${dir}/eds.yaml`;
    const cm = `${dir}/config`;
    await Deno.mkdir(cm);
    const file = (path: string) => ({ path_config_source: { path }, resource_api_version: "V3" });
    const rdsSource = {
      path_config_source: { path: `${cm}/rds.yaml`, watched_directory: { path: cm } },
      resource_api_version: "V3",
    };
    const cluster = (lb: string) => edsCluster(file(eds), lb);
    await moveIntoPlace(
      cds,
      JSON.stringify({
        version_info: "c1",
        resources: [{ "@type": TYPES.cluster, ...cluster("ROUND_ROBIN") }],
      }),
    );
    await moveIntoPlace(eds, response(TYPES.endpoint, "e1", [endpoints([a.port])]));
    await moveIntoPlace(lds, response(TYPES.listener, "l1", [rdsListener(port, "ingress", rdsSource)]));
    await configMap(cm, "r1", response(TYPES.route, "r1", [routes("r1")]));
    const bootstrap = stringify({
      node: { id: "node-1", cluster: "edge" },
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
      dynamic_resources: { lds_config: file(lds), cds_config: file(cds) },
    });
    try {
      await using nuncio = await startNuncio(bootstrap, adminPort, concurrency);
      // LIVE only once the listener's routes and the cluster's endpoints arrived: the first request is served
      assert.equal(await getOnce(port), "hello from a|r1");
      const load = loadLoop(port);
      try {
        await load.more("hello from a|r1", 20);
        // EDS: endpoints move to b
        await moveIntoPlace(eds, response(TYPES.endpoint, "e2", [endpoints([b.port])]));
        await load.more("hello from b|r1", 20);
        // RDS: the ConfigMap's ..data symlink is swapped
        await configMap(cm, "r2", response(TYPES.route, "r2", [routes("r2")]));
        await load.more("hello from b|r2", 20);
        // LDS: the listener is replaced (new stat prefix)
        await moveIntoPlace(
          lds,
          response(TYPES.listener, "l2", [rdsListener(port, "ingress_v2", rdsSource)]),
        );
        await waitFor(
          "LDS v2",
          async () => (await nuncio.stat("http.ingress_v2.downstream_rq_total")) > 0,
          10_000,
        );
        // CDS: the cluster is replaced whole; its endpoints stay
        await moveIntoPlace(
          cds,
          JSON.stringify({
            version_info: "c2",
            resources: [{ "@type": TYPES.cluster, ...cluster("LEAST_REQUEST") }],
          }),
        );
        await waitFor("CDS v2", async () => (await nuncio.stat("cluster_manager.cds.update_success")) >= 2);
        await load.more("hello from b|r2", 20);

        // a cluster with a bad field and a listener file that is not YAML: both rejected, the last good serves
        await moveIntoPlace(
          cds,
          JSON.stringify({
            version_info: "c-bad",
            resources: [{ "@type": TYPES.cluster, ...cluster("BOGUS") }],
          }),
        );
        await moveIntoPlace(lds, "version_info: l-bad\nresources: [ {");
        await waitFor(
          "CDS rejected",
          async () => (await nuncio.stat("cluster_manager.cds.update_rejected")) === 1,
        );
        await waitFor(
          "LDS rejected",
          async () => (await nuncio.stat("listener_manager.lds.update_rejected")) === 1,
        );
        await load.more("hello from b|r2", 50);
        // ... then good files apply
        await moveIntoPlace(
          cds,
          JSON.stringify({
            version_info: "c3",
            resources: [{ "@type": TYPES.cluster, ...cluster("ROUND_ROBIN") }],
          }),
        );
        await configMap(cm, "r3", response(TYPES.route, "r3", [routes("r3")]));
        await load.more("hello from b|r3", 20);
        await waitFor("CDS v3", async () => (await nuncio.stat("cluster_manager.cds.update_success")) >= 3);
        await load.more("hello from b|r3", 20);
      } finally {
        await load.stop();
      }
      assert.deepEqual(load.failures, [], "no request failed during any update");
      const dump = JSON.parse(await nuncio.admin("/config_dump?include_eds"));
      const part = (suffix: string) => dump.configs.find((c: Obj) => String(c["@type"]).endsWith(suffix));
      assert.equal(part("ClustersConfigDump").version_info, "c3");
      assert.equal(part("ListenersConfigDump").version_info, "l2");
      assert.equal(part("EndpointsConfigDump").dynamic_endpoint_configs[0].version_info, "e2");
      assert.equal(part("RoutesConfigDump").dynamic_route_configs[0].version_info, "r3");
      assert.equal(await nuncio.stat("cluster.web.update_success"), 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
