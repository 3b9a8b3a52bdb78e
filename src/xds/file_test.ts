import assert from "node:assert/strict";
import { bootstrapSchema } from "../config/bootstrap.ts";
import { StatsStore } from "../stats/store.ts";
import { XdsClient, xdsNode } from "./client.ts";
import { configSourceClusterIssues } from "./config_check.ts";
import { TYPE_URLS, type XdsUpdate } from "./types.ts";

const LDS = TYPE_URLS.listener;

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes `text` next to `path` and moves it into place, as Envoy expects file updates. */
async function moveIntoPlace(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

const lds = (version: string, names: string[]) =>
  `version_info: "${version}"\nresources:\n` +
  names.map((n) =>
    `- "@type": ${LDS}\n  name: ${n}\n  address: {socket_address: {address: 0.0.0.0, port_value: 1}}\n`
  )
    .join("");

Deno.test("file xDS through XdsClient: moved into place applies, a bad file is rejected and the last good kept", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/lds.yaml`;
  await Deno.writeTextFile(path, lds("1", ["l1"]));
  const dynamic =
    bootstrapSchema.parse({ dynamic_resources: { lds_config: { path_config_source: { path } } } })
      .dynamic_resources;
  const store = new StatsStore();
  const updates: XdsUpdate[] = [];
  const init: string[] = [];
  const client = new XdsClient(dynamic, {
    node: xdsNode({ id: "n" }),
    stats: store,
    resolveCluster: () => undefined,
    listeners: {
      validateAndApply: (u) => {
        if (u.resources.has("bad")) return Promise.resolve('Listener "bad": no filter chains');
        updates.push(u);
        return Promise.resolve(undefined);
      },
      onInitialFetchDone: (o) => init.push(o),
    },
  });
  const stat = (n: string) => store.counters.get(`listener_manager.lds.${n}`)?.value ?? 0;
  try {
    const { lds: watch, cds } = client.start();
    assert.equal(cds, undefined);
    await waitFor("the first load", () => updates.length === 1);
    assert.deepEqual(init, ["applied"]);
    assert.deepEqual([...updates[0].resources.keys()], ["l1"]);

    await moveIntoPlace(path, lds("2", ["l2", "l3"]));
    await waitFor("the moved file", () => updates.length === 2);
    assert.deepEqual(updates[1].removed, ["l1"]);
    assert.equal(watch!.subscription.version, "2");

    await moveIntoPlace(path, lds("3", ["bad"]));
    await waitFor("a rejection", () => stat("update_rejected") === 1);
    await moveIntoPlace(path, "version_info: [unclosed");
    await waitFor("a second rejection", () => stat("update_rejected") === 2);
    assert.equal(watch!.subscription.version, "2");
    assert.deepEqual([...watch!.subscription.resources.keys()], ["l2", "l3"]);

    await moveIntoPlace(path, lds("4", ["l4"]));
    await waitFor("recovery", () => updates.length === 3);
    assert.equal(stat("update_success"), 3);
  } finally {
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file xDS with watched_directory reloads on any move into the directory", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/data/lds.yaml`;
  await Deno.mkdir(`${dir}/data`);
  await Deno.writeTextFile(path, lds("1", ["a"]));
  const dynamic = bootstrapSchema.parse({
    dynamic_resources: { lds_config: { path_config_source: { path, watched_directory: { path: dir } } } },
  }).dynamic_resources;
  const versions: string[] = [];
  const client = new XdsClient(dynamic, {
    node: {},
    stats: new StatsStore(),
    resolveCluster: () => undefined,
    listeners: { validateAndApply: (u) => Promise.resolve(void versions.push(u.version)) },
  });
  try {
    client.start();
    await waitFor("the first load", () => versions.length === 1);
    // a Kubernetes-style swap: the file changes in place, then a symlink is moved into the watched directory
    await Deno.writeTextFile(path, lds("2", ["a"]));
    await Deno.symlink(`${dir}/data`, `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    await waitFor("the reload", () => versions.length === 2);
    assert.deepEqual(versions, ["1", "2"]);
  } finally {
    await client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("XdsClient: gRPC sources need a transport; config source clusters must be static non-EDS clusters", async () => {
  const b = bootstrapSchema.parse({
    static_resources: {
      clusters: [{
        name: "xds",
        type: "STRICT_DNS",
        load_assignment: { cluster_name: "xds", endpoints: [] },
      }],
    },
    dynamic_resources: {
      ads_config: { api_type: "GRPC", grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }] },
      cds_config: { ads: {} },
      lds_config: { api_config_source: { api_type: "REST", cluster_names: ["nowhere"] } },
    },
  });
  assert.deepEqual(configSourceClusterIssues(b), [{
    path: ["dynamic_resources", "lds_config", "api_config_source", "cluster_names", 0],
    message:
      'ApiConfigSource must name a statically defined non-EDS cluster: "nowhere" is not in static_resources.clusters',
  }]);
  const client = new XdsClient(b.dynamic_resources, {
    node: {},
    stats: new StatsStore(),
    resolveCluster: () => undefined,
    clusters: { validateAndApply: () => Promise.resolve(undefined) },
  });
  assert.throws(() => client.start(), /xDS over GRPC is not implemented yet/);
  await client.close();
});
