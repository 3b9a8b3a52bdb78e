/**
 * tls_params with real peers: TLS version bounds both ways (curl --tlsv1.2/--tls-max, openssl s_client, node:tls
 * origins capped at a version), cipher_suites and ecdh_curves accepted only when they allow everything the
 * runtime negotiates, and the Envoy examples that pin TLS 1.3 upstream.
 */
import assert from "node:assert/strict";
import "../src/registry/builtin.ts";
import { loadConfigFile, loadConfigText } from "../src/config/load.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";
import {
  accessLog,
  anyHost,
  bootstrapYaml,
  curl,
  run,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { downstreamTls, makePki, type TestPki } from "./tls_certs.ts";

type Obj = Record<string, unknown>;

const UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const SSL = "listener.127.0.0.1_0.ssl.";

/** A TLS listener with tls_params, routing to cluster `web`, logging the TLS version. */
function tlsListener(pki: TestPki, params: Obj): Obj {
  const ts = downstreamTls(pki, ["proxy"]) as { typed_config: { common_tls_context: Obj } };
  ts.typed_config.common_tls_context.tls_params = params;
  return {
    name: "tls",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type":
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: "tls",
          access_log: [
            accessLog("$LOG", "%DOWNSTREAM_TLS_VERSION%|%DOWNSTREAM_TLS_CIPHER%|%RESPONSE_CODE%\n"),
          ],
          route_config: {
            name: "r",
            virtual_hosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
          },
          http_filters: [{
            name: "envoy.filters.http.router",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
          }],
        },
      }],
      transport_socket: ts,
    }],
  };
}

/** A node:tls HTTP/1.1 origin bounded to `versions`, recording the version each connection negotiated. */
async function startVersionOrigin(pki: TestPki, versions: { minVersion?: string; maxVersion?: string }) {
  const tls = await import("node:tls");
  const sockets = new Set<import("node:tls").TLSSocket>();
  const seen: string[] = [];
  const server = tls.createServer(
    {
      cert: await Deno.readTextFile(`${pki.dir}/origin.crt`),
      key: await Deno.readTextFile(`${pki.dir}/origin.key`),
      ...versions,
    } as import("node:tls").TlsOptions,
    (s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
      s.once("data", () => {
        seen.push(String(s.getProtocol()));
        s.end(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok`);
      });
    },
  );
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port: (server.address() as { port: number }).port, seen, close, [Symbol.asyncDispose]: close };
}

Deno.test("downstream TLS version bounds", async (t) => {
  await using pki = await makePki();
  await pki.leaf("proxy", "proxy.example.com", ["DNS:proxy.example.com"]);
  await using origin = startOrigin("web");
  const cluster = staticCluster("web", [origin.port]);
  const curlTls = (port: number, extra: string[]) =>
    curl([
      "--cacert",
      pki.caPath,
      "--resolve",
      `proxy.example.com:${port}:127.0.0.1`,
      "-w",
      "|%{http_code}",
      ...extra,
      `https://proxy.example.com:${port}/`,
    ]);

  await t.step("minimum TLSv1_3: a TLS 1.2-only client is refused from its ClientHello", async () => {
    await using proxy = await startProxy(bootstrapYaml([
      tlsListener(pki, { tls_minimum_protocol_version: "TLSv1_3" }),
    ], [cluster]));
    const old = await curlTls(proxy.port(), ["--tlsv1.2", "--tls-max", "1.2"]);
    assert.notEqual(old.code, 0);
    assert.equal(proxy.stat(SSL + "connection_error"), 1);
    const ok = await curlTls(proxy.port(), ["--tlsv1.2"]);
    assert.equal(ok.stdout, "hello from web|200");
    assert.equal(proxy.stat(SSL + "versions.TLSv1.3"), 1);
    assert.equal((await proxy.log(1))[0].code, "TLSv1.3");
  });

  await t.step("maximum TLSv1_2: TLS 1.3-only clients are refused, others get TLS 1.2", async () => {
    await using proxy = await startProxy(bootstrapYaml([
      tlsListener(pki, { tls_maximum_protocol_version: "TLSv1_2" }),
    ], [cluster]));
    const v13 = await curlTls(proxy.port(), ["--tlsv1.3"]);
    assert.notEqual(v13.code, 0);
    assert.equal(proxy.stat(SSL + "connection_error"), 1);
    const ok = await curlTls(proxy.port(), []);
    assert.equal(ok.stdout, "hello from web|200");
    const s = await run("openssl", [
      "s_client",
      "-connect",
      `127.0.0.1:${proxy.port()}`,
      "-CAfile",
      pki.caPath,
      "-servername",
      "proxy.example.com",
    ], "");
    assert.match(s.stdout, /Protocol\s*: TLSv1\.2/);
    assert.equal(proxy.stat(SSL + "versions.TLSv1.2"), 2);
    assert.equal(proxy.stat(SSL + "handshake"), 2);
    assert.equal((await proxy.log(1))[0].code, "TLSv1.2");
  });
});

Deno.test("upstream TLS version bounds", async (t) => {
  await using pki = await makePki();
  await pki.leaf("origin", "origin.internal", ["DNS:origin.internal"]);
  await using old = await startVersionOrigin(pki, { maxVersion: "TLSv1.2" });
  await using modern = await startVersionOrigin(pki, {});
  const tlsCluster = (name: string, port: number, params: Obj) =>
    staticCluster(name, [port], {
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": UPSTREAM,
          sni: "origin.internal",
          common_tls_context: {
            tls_params: params,
            validation_context: { trusted_ca: { filename: pki.caPath } },
          },
        },
      },
    });
  const only13 = { tls_minimum_protocol_version: "TLSv1_3", tls_maximum_protocol_version: "TLSv1_3" };
  await using proxy = await startProxy(bootstrapYaml([{
    name: "edge",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type":
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: "edge",
          route_config: {
            name: "r",
            virtual_hosts: [anyHost(
              ["old13", "modern13", "modern12"].map((c) => ({
                match: { prefix: `/${c}` },
                route: { cluster: c },
              })),
            )],
          },
          http_filters: [{
            name: "envoy.filters.http.router",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
          }],
        },
      }],
    }],
  }], [
    tlsCluster("old13", old.port, only13),
    tlsCluster("modern13", modern.port, only13),
    tlsCluster("modern12", modern.port, { tls_maximum_protocol_version: "TLSv1_2" }),
  ]));
  const get = (path: string) => curl(["-w", "|%{http_code}", proxy.url(path)]);

  await t.step(
    "TLS 1.3 only (Envoy's tls example): an origin capped at TLS 1.2 fails with 503 UF",
    async () => {
      const r = await get("/old13");
      assert.match(r.stdout, /\|503$/);
      assert.match(r.stdout, /TLS_error/);
      assert.equal(proxy.stat("cluster.old13.ssl.connection_error"), 1);
      assert.deepEqual(old.seen, []);
    },
  );

  await t.step(
    "TLS 1.3 only to a modern origin, and a TLS 1.2 cap: each version is what was negotiated",
    async () => {
      assert.equal((await get("/modern13")).stdout, "ok|200");
      assert.equal((await get("/modern12")).stdout, "ok|200");
      assert.deepEqual(modern.seen, ["TLSv1.3", "TLSv1.2"]);
      assert.equal(proxy.stat("cluster.modern13.ssl.versions.TLSv1.3"), 1);
      assert.equal(proxy.stat("cluster.modern12.ssl.versions.TLSv1.2"), 1);
    },
  );
});

Deno.test("cipher_suites and ecdh_curves load only when they allow what the runtime negotiates", async (t) => {
  await using pki = await makePki();
  await pki.leaf("proxy", "proxy.example.com", ["DNS:proxy.example.com"]);
  const load = (params: Obj) => {
    const r = loadConfigText(
      bootstrapYaml([tlsListener(pki, params)], [staticCluster("web", [1])]).replaceAll("$LOG", "/dev/null"),
      "t.yaml",
      { crossCheck: checkClusterReferences },
    );
    return r.ok ? "loads" : r.errors.map((e) => `${e.path.split(".").pop()}: ${e.message}`).join("\n");
  };
  const envoyDefaults = [
    "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]",
    "[ECDHE-RSA-AES128-GCM-SHA256|ECDHE-RSA-CHACHA20-POLY1305]",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
  ];

  await t.step("Envoy's default cipher list and the runtime's curves load", () => {
    assert.equal(load({ cipher_suites: envoyDefaults, ecdh_curves: ["X25519", "P-256", "P-384"] }), "loads");
    // a list that cannot matter: TLS 1.2 is off
    assert.equal(
      load({ tls_minimum_protocol_version: "TLSv1_3", cipher_suites: ["ECDHE-RSA-AES128-GCM-SHA256"] }),
      "loads",
    );
  });

  await t.step("narrower lists are refused, naming what the runtime always offers", () => {
    assert.match(
      load({ cipher_suites: ["ECDHE-ECDSA-AES128-GCM-SHA256"] }),
      /^cipher_suites: Field not supported by nuncio: the runtime always offers .* \(missing: ECDHE-ECDSA-AES256-GCM-SHA384/,
    );
    assert.match(
      load({ ecdh_curves: ["X25519", "P-256"] }),
      /^ecdh_curves: Field not supported by nuncio: .*\(missing: P-384\)$/,
    );
    assert.match(
      load({ cipher_suites: ["TLS_AES_128_GCM_SHA256"] }),
      /TLS 1\.3 cipher suites cannot be configured/,
    );
    assert.match(load({ ecdh_curves: ["brainpool"] }), /Unknown ECDH curve "brainpool"/);
    assert.match(
      load({ tls_maximum_protocol_version: "TLSv1_1" }),
      /^tls_maximum_protocol_version: Field not supported by nuncio/,
    );
    assert.match(
      load({ tls_minimum_protocol_version: "TLSv1_3", tls_maximum_protocol_version: "TLSv1_2" }),
      /above the maximum/,
    );
  });

  await t.step("Envoy's TLS examples pinning TLS 1.3 upstream now load", async () => {
    for (const name of ["examples_tls_envoy_http_https.yaml", "examples_tls_envoy_https_https.yaml"]) {
      const r = await loadConfigFile(new URL(`./envoy_examples/${name}`, import.meta.url).pathname, {
        crossCheck: checkClusterReferences,
      });
      assert.ok(r.ok, name);
    }
  });
});
