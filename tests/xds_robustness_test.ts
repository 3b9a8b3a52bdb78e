/**
 * What a control plane sends must never wedge the proxy (found by review, each fails without its fix): an LDS
 * update whose second listener cannot bind keeps the first one live, recorded and removable; a listener whose
 * RDS never answers stops warming after initial_fetch_timeout and serves 404 NR. In-process and two workers.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import { refusedPort } from "./helpers.ts";
import { getOnce, launchNuncio, rdsListener, TYPES } from "./xds_e2e_helpers.ts";

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

const direct = (name: string, port: number) => ({
  "@type": TYPES.listener,
  name,
  address: { socket_address: { address: "127.0.0.1", port_value: port } },
  filter_chains: [{
    filters: [{
      name: "envoy.filters.network.http_connection_manager",
      typed_config: {
        "@type": HCM,
        stat_prefix: name,
        route_config: {
          virtual_hosts: [{
            name: "a",
            domains: ["*"],
            routes: [{
              match: { prefix: "/" },
              direct_response: { status: 200, body: { inline_string: `hello from ${name}` } },
            }],
          }],
        },
        http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
      },
    }],
  }],
});

function bootstrap(adminPort: number, lds: string): string {
  return stringify({
    node: { id: "n", cluster: "c" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
    dynamic_resources: { lds_config: { path_config_source: { path: lds }, resource_api_version: "V3" } },
  });
}

async function put(path: string, doc: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, stringify(doc));
  await Deno.rename(`${path}.tmp`, path);
}

for (const concurrency of [1, 2]) {
  Deno.test(`xDS: a partly failed LDS update keeps what applied, recorded and removable (--concurrency ${concurrency})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "nuncio_xds_partial_" });
    const lds = `${dir}/lds.yaml`;
    const adminPort = refusedPort();
    const portA = refusedPort();
    const portC = refusedPort();
    const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 }); // B's port is taken
    const portB = (blocker.addr as Deno.NetAddr).port;
    await put(lds, { version_info: "v0", resources: [] });
    const n = await launchNuncio(bootstrap(adminPort, lds), adminPort, concurrency);
    try {
      await waitFor("LIVE", () => n.admin("/ready").then((t) => t === "LIVE\n").catch(() => false), 15_000);
      await put(lds, { version_info: "v1", resources: [direct("A", portA), direct("B", portB)] });
      await waitFor(
        "the NACK",
        async () => (await n.stat("listener_manager.lds.update_rejected")) >= 1,
        10_000,
      );
      // A applied, B did not: A serves and is shown; the NACK named B
      assert.equal(await getOnce(portA), "hello from A|null");
      const dump = JSON.parse(await n.admin("/config_dump"));
      const listeners = dump.configs.find((c: { "@type": string }) =>
        c["@type"].endsWith("ListenersConfigDump")
      );
      assert.deepEqual(listeners.dynamic_listeners.map((l: { name: string }) => l.name), ["A"]);
      // a later state of the world without A removes it, although no ACK ever covered it
      await put(lds, { version_info: "v2", resources: [direct("C", portC)] });
      await waitFor("v2", async () => (await n.stat("listener_manager.lds.update_success")) >= 2, 10_000);
      await waitFor("A removed", () => getOnce(portA).then(() => false, () => true), 10_000);
      assert.equal(await getOnce(portC), "hello from C|null");
    } finally {
      blocker.close();
      await n.stop();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("xDS: a listener whose RDS never answers stops warming after initial_fetch_timeout and serves 404 NR", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_xds_rds_never_" });
  const lds = `${dir}/lds.yaml`;
  const adminPort = refusedPort();
  const port = refusedPort();
  const rds = {
    path_config_source: { path: `${dir}/absent.yaml` },
    resource_api_version: "V3",
    initial_fetch_timeout: "0.3s",
  };
  await put(lds, {
    version_info: "l1",
    resources: [{ "@type": TYPES.listener, ...rdsListener(port, "ingress", rds) }],
  });
  const n = await launchNuncio(bootstrap(adminPort, lds), adminPort, 1);
  try {
    await waitFor("LIVE", () => n.admin("/ready").then((t) => t === "LIVE\n").catch(() => false), 15_000);
    await waitFor("the listener to serve", async () => {
      const r = await fetch(`http://127.0.0.1:${port}/x`).catch(() => undefined);
      await r?.body?.cancel();
      return r?.status === 404;
    }, 10_000);
    assert.equal(await n.stat("http.ingress.rds.routes.init_fetch_timeout"), 1);
    assert.equal(await n.stat("listener_manager.total_listeners_warming"), 0);
  } finally {
    await n.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
