/**
 * SDS end to end with real TLS: nuncio (a child process) fetches secrets from an independent REST-JSON
 * management server (python3). A static listener's certificate comes from SDS (A, then B served on new
 * handshakes without a restart); a secret whose key does not match its certificate is NACKed
 * (`sds.<name>.update_rejected`) while B keeps serving; a cluster's validation context comes from SDS (a SAN
 * matcher that fails, then one that passes); a dynamic (LDS) listener whose secret has not arrived warms (takes
 * no connections) and serves once it arrives. In-process (--concurrency 1) and with two workers.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import { curl, refusedPort, startOrigin } from "./helpers.ts";
import { makePki, sClient, type TestPki } from "./tls_certs.ts";
import { launchNuncio } from "./xds_e2e_helpers.ts";
import { startRestXdsServer } from "./xds_rest_server.ts";

type Obj = Record<string, unknown>;

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

const rest = {
  resource_api_version: "V3",
  api_config_source: {
    api_type: "REST",
    transport_api_version: "V3",
    cluster_names: ["xds"],
    refresh_delay: "0.05s",
  },
};

const sdsTls = (secret: string): Obj => ({
  name: "envoy.transport_sockets.tls",
  typed_config: {
    "@type": DOWNSTREAM,
    common_tls_context: { tls_certificate_sds_secret_configs: [{ name: secret, sds_config: rest }] },
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
        routes: [
          { match: { prefix: "/up" }, route: { cluster: "tls_origin" } },
          { match: { prefix: "/" }, route: { cluster: "origin" } },
        ],
      }],
    },
    http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
  },
});

const listener = (name: string, port: number, secret: string): Obj => ({
  name,
  address: { socket_address: { address: "127.0.0.1", port_value: port } },
  filter_chains: [{ transport_socket: sdsTls(secret), filters: [hcm(name)] }],
});

const staticCluster = (name: string, port: number, extra: Obj = {}): Obj => ({
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

function bootstrap(
  o: { xds: number; admin: number; edge: number; origin: number; tlsOrigin: number; static: number },
  pki: TestPki,
): string {
  // a secret named without sds_config is one of static_resources.secrets
  const staticListener: Obj = {
    name: "static_secret",
    address: { socket_address: { address: "127.0.0.1", port_value: o.static } },
    filter_chains: [{
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": DOWNSTREAM,
          common_tls_context: { tls_certificate_sds_secret_configs: [{ name: "static_cert" }] },
        },
      },
      filters: [hcm("static_secret")],
    }],
  };
  return stringify({
    node: { id: "node-1", cluster: "edge" },
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: o.admin } } },
    dynamic_resources: { lds_config: rest },
    static_resources: {
      listeners: [listener("edge", o.edge, "server_cert"), staticListener],
      secrets: [{
        name: "static_cert",
        tls_certificate: {
          certificate_chain: { filename: `${pki.dir}/static.crt` },
          private_key: { filename: `${pki.dir}/static.key` },
        },
      }],
      clusters: [
        staticCluster("xds", o.xds),
        staticCluster("origin", o.origin),
        staticCluster("tls_origin", o.tlsOrigin, {
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": UPSTREAM,
              sni: "origin.sds.test",
              common_tls_context: {
                validation_context_sds_secret_config: { name: "upstream_ca", sds_config: rest },
              },
            },
          },
        }),
      ],
    },
  });
}

async function certSecret(pki: TestPki, name: string, leaf: string, keyOf = leaf): Promise<Obj> {
  return {
    name,
    tls_certificate: {
      certificate_chain: { inline_string: await Deno.readTextFile(`${pki.dir}/${leaf}.crt`) },
      private_key: { inline_string: await Deno.readTextFile(`${pki.dir}/${keyOf}.key`) },
    },
  };
}

const caSecret = (pki: TestPki, san: string): Obj => ({
  name: "upstream_ca",
  validation_context: {
    trusted_ca: { inline_string: pki.caPem },
    match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: san } }],
  },
});

/** A Deno.serve HTTPS origin. */
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
  Deno.test(`SDS end to end (--concurrency ${concurrency})`, async () => {
    await using pki = await makePki();
    await pki.leaf("a", "a.sds.test", ["DNS:sds.test"]);
    await pki.leaf("b", "b.sds.test", ["DNS:sds.test"]);
    await pki.leaf("late", "late.sds.test", ["DNS:sds.test"]);
    await pki.leaf("static", "static.sds.test", ["DNS:sds.test"]);
    const origin_ = await pki.leaf("origin", "origin.sds.test", ["DNS:origin.sds.test"]);
    const serialA = await pki.serialOf(`${pki.dir}/a.crt`);
    const serialB = await pki.serialOf(`${pki.dir}/b.crt`);
    await using origin = startOrigin("plain");
    await using tlsOrigin = startTlsOrigin(origin_.cert, origin_.key);
    await using xds = await startRestXdsServer();
    const ports = { edge: refusedPort(), admin: refusedPort(), dyn: refusedPort(), static: refusedPort() };
    await xds.serve("listeners", "l1", [listener("dyn", ports.dyn, "late_cert")]);
    // the upstream validation context first asks for a SAN the origin does not have
    await xds.serve("secrets", "s1", [
      await certSecret(pki, "server_cert", "a"),
      caSecret(pki, "nope.sds.test"),
    ]);
    const n = await launchNuncio(
      bootstrap({
        xds: xds.port,
        admin: ports.admin,
        edge: ports.edge,
        origin: origin.port,
        tlsOrigin: tlsOrigin.port,
        static: ports.static,
      }, pki),
      ports.admin,
      concurrency,
    );
    const stat = async (name: string) => (await n.stat(name)) || 0;
    const https = (port: number, path = "/") =>
      curl([
        "-sS",
        "--cacert",
        pki.caPath,
        "--resolve",
        `sds.test:${port}:127.0.0.1`,
        `https://sds.test:${port}${path}`,
      ]);
    const serialAt = async (port: number) =>
      (await sClient(port, { servername: "sds.test", caPath: pki.caPath })).serial;
    try {
      // certificate A from SDS
      await waitFor(
        "certificate A",
        async () => (await serialAt(ports.edge).catch(() => "")) === serialA,
        15_000,
      );
      const r = await https(ports.edge);
      assert.equal(r.stdout, "hello from plain", r.stderr);
      assert.ok((await stat("sds.server_cert.update_success")) >= 1);
      // a static secret (static_resources.secrets) needs no SDS
      assert.equal(
        (await sClient(ports.static, { servername: "sds.test", caPath: pki.caPath })).cn,
        "static.sds.test",
      );
      assert.equal((await https(ports.static)).stdout, "hello from plain");

      // the validation context from SDS: the SAN matcher fails, then (rotated) passes
      const up = await https(ports.edge, "/up");
      assert.match(up.stdout, /^upstream connect error.*no subject alternative name matched/, up.stdout);
      // the dynamic listener's secret has not arrived: it warms and takes no connection
      await waitFor(
        "LDS applied",
        async () => (await stat("listener_manager.lds.update_success")) >= 1,
        10_000,
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.notEqual((await https(ports.dyn)).code, 0, "a listener without its secret took a connection");

      // rotation: B on new handshakes, no restart; the CA secret now names the origin's SAN; late_cert arrives
      await xds.serve("secrets", "s2", [
        await certSecret(pki, "server_cert", "b"),
        caSecret(pki, "origin.sds.test"),
        await certSecret(pki, "late_cert", "late"),
      ]);
      await waitFor("certificate B", async () => (await serialAt(ports.edge)) === serialB, 10_000);
      const rb = await https(ports.edge);
      assert.equal(rb.stdout, "hello from plain", rb.stderr);
      await waitFor(
        "the upstream validation context",
        async () => (await https(ports.edge, "/up")).stdout === "tls origin",
        10_000,
      );
      await waitFor(
        "the warmed dynamic listener",
        async () => (await https(ports.dyn)).stdout === "hello from plain",
        10_000,
      );
      assert.equal(
        (await sClient(ports.dyn, { servername: "sds.test", caPath: pki.caPath })).cn,
        "late.sds.test",
      );

      // a key that does not match its certificate: NACK with the reason, B keeps serving
      await xds.serve("secrets", "s3", [
        await certSecret(pki, "server_cert", "a", "b"),
        caSecret(pki, "origin.sds.test"),
        await certSecret(pki, "late_cert", "late"),
      ]);
      await waitFor(
        "the NACK",
        async () =>
          (await xds.requests()).some((q) =>
            String(q.type_url).endsWith("Secret") &&
            /Secret "server_cert": tls_certificate: Private key does not match the certificate/.test(
              String((q.error_detail as { message?: string } | undefined)?.message ?? ""),
            )
          ),
        10_000,
      );
      assert.ok((await stat("sds.server_cert.update_rejected")) >= 1);
      assert.equal(await serialAt(ports.edge), serialB);
      assert.equal((await https(ports.edge)).stdout, "hello from plain");
    } finally {
      await n.stop(); // SIGTERM, a clean exit (code 0) asserted
    }
  });
}
