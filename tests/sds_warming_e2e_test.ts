/**
 * Warming on SDS secrets end to end (nuncio as a child process, secrets from the python REST management server):
 * a CDS cluster whose validation context comes from SDS stays warming until the secret arrives (its route
 * answers 503 without a cluster, never an upstream connect failure), and an update of it keeps the previous
 * version serving until its new secret arrives; a listener whose certificate never arrives becomes active
 * after its SDS source's initial_fetch_timeout (1 s) with `sds.<name>.init_fetch_timeout` counted, its
 * handshakes failing; /ready waits for the initial secrets. In-process (--concurrency 1) and with two workers.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import { curl, refusedPort } from "./helpers.ts";
import { makePki, sClient, type TestPki } from "./tls_certs.ts";
import { launchNuncio } from "./xds_e2e_helpers.ts";
import { startRestXdsServer } from "./xds_rest_server.ts";

type Obj = Record<string, unknown>;

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

const rest = (timeout = "30s"): Obj => ({
  resource_api_version: "V3",
  initial_fetch_timeout: timeout,
  api_config_source: {
    api_type: "REST",
    transport_api_version: "V3",
    cluster_names: ["xds"],
    refresh_delay: "0.05s",
  },
});

const hcm = (prefix: string): Obj => ({
  name: "envoy.filters.network.http_connection_manager",
  typed_config: {
    "@type": HCM,
    stat_prefix: prefix,
    route_config: {
      name: "r",
      virtual_hosts: [{
        name: "any",
        domains: ["*"],
        routes: [{ match: { prefix: "/" }, route: { cluster: "up" } }],
      }],
    },
    http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
  },
});

const plainListener = (port: number): Obj => ({
  name: "edge",
  address: { socket_address: { address: "127.0.0.1", port_value: port } },
  filter_chains: [{ filters: [hcm("edge")] }],
});

/** A listener whose certificate comes from SDS with a 1 s initial_fetch_timeout. */
const sdsListener = (port: number, secret: string): Obj => ({
  name: "never",
  address: { socket_address: { address: "127.0.0.1", port_value: port } },
  filter_chains: [{
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": DOWNSTREAM,
        common_tls_context: {
          tls_certificate_sds_secret_configs: [{ name: secret, sds_config: rest("1s") }],
        },
      },
    },
    filters: [hcm("never")],
  }],
});

const cluster = (name: string, port: number, extra: Obj = {}): Obj => ({
  name,
  type: "STATIC",
  connect_timeout: "1s",
  load_assignment: {
    cluster_name: name,
    endpoints: [{
      lb_endpoints: [{
        endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } },
      }],
    }],
  },
  ...extra,
});

/** The TLS origin's cluster; its validation context is the SDS secret `ca`. */
const tlsCluster = (port: number, ca: string, timeout: string): Obj =>
  cluster("up", port, {
    connect_timeout: timeout,
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": UPSTREAM,
        sni: "origin.sds.test",
        common_tls_context: { validation_context_sds_secret_config: { name: ca, sds_config: rest() } },
      },
    },
  });

const caSecret = (pki: TestPki, name: string): Obj => ({
  name,
  validation_context: {
    trusted_ca: { inline_string: pki.caPem },
    match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "origin.sds.test" } }],
  },
});

function startTlsOrigin(cert: string, key: string) {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(cert),
    key: Deno.readTextFileSync(key),
    onListen: () => {},
  }, () => new Response("tls origin"));
  const close = async () => {
    await server.shutdown();
    await server.finished;
  };
  return { port: server.addr.port, close, [Symbol.asyncDispose]: close };
}

for (const concurrency of [1, 2]) {
  Deno.test(`SDS warming end to end (--concurrency ${concurrency})`, async () => {
    await using pki = await makePki();
    const leaf = await pki.leaf("origin", "origin.sds.test", ["DNS:origin.sds.test"]);
    await using origin = startTlsOrigin(leaf.cert, leaf.key);
    await using xds = await startRestXdsServer();
    const ports = { admin: refusedPort(), edge: refusedPort(), never: refusedPort() };
    await xds.serve("listeners", "l1", [plainListener(ports.edge), sdsListener(ports.never, "never_cert")]);
    await xds.serve("clusters", "c1", [tlsCluster(origin.port, "ca1", "1s")]);
    await xds.serve("secrets", "s0", []);
    const n = await launchNuncio(
      stringify({
        node: { id: "node-1", cluster: "edge" },
        admin: { address: { socket_address: { address: "127.0.0.1", port_value: ports.admin } } },
        dynamic_resources: { lds_config: rest(), cds_config: rest() },
        static_resources: { clusters: [cluster("xds", xds.port)] },
      }),
      ports.admin,
      concurrency,
    );
    const admin = (path: string) => fetch(`http://127.0.0.1:${ports.admin}${path}`);
    const stat = async (name: string) => {
      const r = await admin(`/stats?filter=^${name.replaceAll(".", "\\.")}$`).catch(() => undefined);
      const line = (await r?.text() ?? "").trim();
      return Number(line.split(": ")[1] ?? 0);
    };
    const ready = async () => {
      const r = await admin("/ready").catch(() => undefined);
      await r?.body?.cancel();
      return r?.status ?? 0;
    };
    const get = async () => {
      const r = await curl(["-w", "\n%{http_code}", `http://127.0.0.1:${ports.edge}/`]);
      const at = r.stdout.lastIndexOf("\n");
      return { code: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
    };
    try {
      await waitFor(
        "LDS and CDS applied",
        async () =>
          (await stat("cluster_manager.cds.update_success")) >= 1 &&
          (await stat("listener_manager.lds.update_success")) >= 1,
        15_000,
      );
      // the cluster warms on its secret: no cluster (503), never a transport failure; /ready waits
      await waitFor("the edge listener", async () => (await get()).code !== 0, 10_000);
      for (let i = 0; i < 5; i++) {
        const r = await get();
        assert.equal(r.code, 503, r.body);
        assert.doesNotMatch(r.body, /upstream connect error|not yet received/, r.body);
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(await stat("cluster_manager.warming_clusters"), 1);
      assert.notEqual(await ready(), 200, "/ready before the initial secrets arrived");

      // the listener's certificate never arrives: active after 1 s, handshakes fail, the timeout is counted
      await waitFor(
        "sds.never_cert.init_fetch_timeout",
        async () => (await stat("sds.never_cert.init_fetch_timeout")) === 1,
        10_000,
      );
      await waitFor("the listener past its timeout", async () => {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: ports.never }).catch(() => undefined);
        c?.close();
        return c !== undefined;
      }, 10_000);
      const hs = await sClient(ports.never, { servername: "sds.test", caPath: pki.caPath });
      assert.equal(hs.serial, "", "no certificate served");
      assert.notEqual(await ready(), 200, "ca1 (30 s timeout) still holds /ready");

      // the validation context arrives: the cluster serves, /ready answers 200
      await xds.serve("secrets", "s1", [caSecret(pki, "ca1")]);
      await waitFor("the warmed cluster", async () => (await get()).body === "tls origin", 10_000);
      await waitFor("/ready", async () => (await ready()) === 200, 10_000);
      assert.equal(await stat("cluster_manager.warming_clusters"), 0);
      assert.equal(await stat("sds.ca1.init_fetch_timeout"), 0);

      // an update naming a secret not yet sent warms; the previous version keeps serving meanwhile
      await xds.serve("clusters", "c2", [tlsCluster(origin.port, "ca2", "2s")]);
      await waitFor(
        "the update warming",
        async () => (await stat("cluster_manager.warming_clusters")) === 1,
        10_000,
      );
      for (let i = 0; i < 5; i++) {
        const r = await get();
        assert.equal(r.body, "tls origin", `the previous version serves: ${r.code} ${r.body}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      await xds.serve("secrets", "s2", [caSecret(pki, "ca1"), caSecret(pki, "ca2")]);
      await waitFor(
        "the update warm",
        async () => (await stat("cluster_manager.warming_clusters")) === 0,
        10_000,
      );
      assert.equal((await get()).body, "tls origin");
    } finally {
      await n.stop(); // SIGTERM, a clean exit (code 0) asserted
    }
  });
}
