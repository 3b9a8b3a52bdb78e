/**
 * Access log operators fed by the downstream connection and the route: SNI, TLS version/cipher/session id,
 * the served certificate, peer certificate operators without mTLS, and %UPSTREAM_CLUSTER% on local replies.
 */
import assert from "node:assert/strict";
import { applyLogSettings, logSettings, setComponentLogLevel, setLogPath } from "../src/common/log.ts";
import {
  accessLog,
  bootstrapYaml,
  curl,
  curlStatus,
  sleep,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { downstreamTls, makePki } from "./tls_certs.ts";

type Obj = Record<string, unknown>;

const FORMAT = "%REQUESTED_SERVER_NAME%|%DOWNSTREAM_TLS_VERSION%|%DOWNSTREAM_TLS_CIPHER%|" +
  "%DOWNSTREAM_TLS_SESSION_ID%|%DOWNSTREAM_LOCAL_DNS_SAN%|%DOWNSTREAM_LOCAL_URI_SAN%|%DOWNSTREAM_LOCAL_SUBJECT%|" +
  "%DOWNSTREAM_PEER_SUBJECT%|%DOWNSTREAM_PEER_URI_SAN%|%DOWNSTREAM_PEER_FINGERPRINT_256%|%DOWNSTREAM_PEER_CERT%|" +
  "%UPSTREAM_CLUSTER%|%RESPONSE_CODE%|%RESPONSE_FLAGS%\n";

/** No SNI or TLS version/cipher/session id: a single-chain listener logging only this keeps Deno's TLS listener. */
const DIRECT_FORMAT =
  "%DOWNSTREAM_LOCAL_DNS_SAN%|%DOWNSTREAM_LOCAL_SUBJECT%|%UPSTREAM_CLUSTER%|%RESPONSE_CODE%\n";

const FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

function hcm(statPrefix: string, filters: Obj[] = [], format = FORMAT): Obj {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type":
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: statPrefix,
      access_log: [accessLog("$LOG", format)],
      route_config: {
        name: "r",
        virtual_hosts: [{
          name: "any",
          domains: ["*"],
          routes: [
            { match: { prefix: "/hdr" }, route: { cluster_header: "x-cluster" } },
            { match: { prefix: "/" }, route: { cluster: "web" } },
          ],
        }],
      },
      http_filters: [...filters, {
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
    },
  };
}

function listener(name: string, chains: Obj[], extra: Obj = {}): Obj {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: chains,
    ...extra,
  };
}

/** The access log's lines once there are `n` (bounded wait). */
async function lines(path: string, n: number): Promise<string[][]> {
  for (let i = 0; i < 300; i++) {
    const l = (await Deno.readTextFile(path)).split("\n").filter((x) => x !== "");
    if (l.length >= n) return l.map((x) => x.split("|"));
    await sleep(10);
  }
  throw new Error(`Access log has fewer than ${n} lines`);
}

Deno.test("access log: downstream TLS operators and the route's cluster", async (t) => {
  await using pki = await makePki();
  await pki.leaf("a", "a.example.com", ["DNS:a.example.com", "URI:spiffe://nuncio/a"]);
  await using origin = startOrigin("web");
  const clusters = [staticCluster("web", [origin.port])];
  await using proxy = await startProxy(bootstrapYaml([
    // inspected: the chain is chosen by SNI, TLS runs over the loopback splice
    listener("inspected", [
      {
        filter_chain_match: { server_names: ["a.example.com"] },
        transport_socket: downstreamTls(pki, ["a"]),
        filters: [hcm("inspected")],
      },
    ], { listener_filters: [{ name: "envoy.filters.listener.tls_inspector" }] }),
    // direct: one TLS chain logging no SNI/TLS facts, the socket is a Deno TLS listener
    listener("direct", [{
      transport_socket: downstreamTls(pki, ["a"]),
      filters: [hcm("direct", [], DIRECT_FORMAT)],
    }]),
    // one TLS chain, no tls_inspector, but its access log prints SNI: the ClientHello is read all the same
    listener("one_chain_logged", [{ transport_socket: downstreamTls(pki, ["a"]), filters: [hcm("ocl")] }]),
    // the same through tcp_proxy (TLS terminated, plain HTTP to the origin)
    listener("tcp_logged", [{
      transport_socket: downstreamTls(pki, ["a"]),
      filters: [{
        name: "envoy.filters.network.tcp_proxy",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
          stat_prefix: "tcp_logged",
          cluster: "web",
          access_log: [accessLog("$LOG", "tcp|%REQUESTED_SERVER_NAME%|%DOWNSTREAM_TLS_VERSION%\n")],
        },
      }],
    }]),
    // one TLS chain with tls_inspector: the ClientHello is read, so SNI and version are known
    listener(
      "one_chain_inspected",
      [{ transport_socket: downstreamTls(pki, ["a"]), filters: [hcm("oci")] }],
      {
        listener_filters: [{ name: "envoy.filters.listener.tls_inspector" }],
      },
    ),
    // plain text, with a fault filter aborting every request
    listener("plain", [{
      filters: [hcm("plain", [{
        name: "envoy.filters.http.fault",
        typed_config: {
          "@type": FAULT_TYPE,
          abort: { http_status: 429, percentage: { numerator: 100, denominator: "HUNDRED" } },
        },
      }])],
    }]),
  ], clusters));
  const tlsCurl = (port: number, extra: string[] = []) =>
    curl([
      "-s",
      ...extra,
      "--cacert",
      pki.caPath,
      "--resolve",
      `a.example.com:${port}:127.0.0.1`,
      `https://a.example.com:${port}/x`,
    ]);
  let n = 0;

  await t.step(
    "inspected TLS: SNI, version, cipher and the served certificate; no peer certificate",
    async () => {
      const r = await tlsCurl(proxy.port("inspected"), ["--tlsv1.3"]);
      assert.equal(r.stdout, "hello from web", r.stderr);
      const [l] = (await lines(proxy.logPath, ++n)).slice(-1);
      assert.equal(l[0], "a.example.com");
      assert.equal(l[1], "TLSv1.3");
      assert.match(l[2], /^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/);
      assert.equal(l[3], "-", "TLS 1.3 has no session id to show");
      assert.equal(l[4], "a.example.com");
      assert.equal(l[5], "spiffe://nuncio/a");
      assert.equal(l[6], "CN=a.example.com");
      assert.deepEqual(l.slice(7, 11), ["-", "-", "-", "-"], "no client certificate: peer operators print -");
      assert.equal(l[11], "web");
    },
  );

  await t.step("inspected TLS 1.2: version, ECDHE cipher and the session id", async () => {
    const r = await tlsCurl(proxy.port("inspected"), ["--tls-max", "1.2"]);
    assert.equal(r.stdout, "hello from web", r.stderr);
    const [l] = (await lines(proxy.logPath, ++n)).slice(-1);
    assert.equal(l[1], "TLSv1.2");
    assert.match(l[2], /^ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$/);
    assert.match(l[3], /^[0-9a-f]{64}$/, "rustls gives TLS 1.2 sessions a 32-byte id");
  });

  await t.step(
    "one TLS chain logging SNI, no tls_inspector: the ClientHello is read, SNI and version are known",
    async () => {
      const r = await tlsCurl(proxy.port("one_chain_logged"), ["--tlsv1.3"]);
      assert.equal(r.stdout, "hello from web", r.stderr);
      const [l] = (await lines(proxy.logPath, ++n)).slice(-1);
      assert.equal(l[0], "a.example.com");
      assert.equal(l[1], "TLSv1.3");
      assert.match(l[2], /^TLS_/);
      assert.equal(l[4], "a.example.com");
      assert.equal(l[11], "web");
    },
  );

  await t.step("tcp_proxy on one TLS chain logging SNI: SNI and version are known", async () => {
    const r = await tlsCurl(proxy.port("tcp_logged"), ["--tlsv1.3"]);
    assert.equal(r.stdout, "hello from web", r.stderr);
    const [l] = (await lines(proxy.logPath, ++n)).slice(-1);
    assert.deepEqual(l, ["tcp", "a.example.com", "TLSv1.3"]);
  });

  await t.step(
    "one TLS chain logging no TLS facts keeps Deno's TLS listener; logging SNI switches to inspection",
    async () => {
      const debugPath = await Deno.makeTempFile({ prefix: "nuncio_tls_path_", suffix: ".log" });
      const saved = logSettings();
      try {
        setLogPath(debugPath);
        setComponentLogLevel("conn_handler", "debug");
        const direct = await tlsCurl(proxy.port("direct"));
        assert.equal(direct.stdout, "hello from web", direct.stderr);
        const logged = await tlsCurl(proxy.port("one_chain_logged"));
        assert.equal(logged.stdout, "hello from web", logged.stderr);
        n += 2;
      } finally {
        applyLogSettings(saved);
      }
      const debug = (await Deno.readTextFile(debugPath)).split("\n");
      await Deno.remove(debugPath);
      const chosen = (name: string) => debug.find((x) => x.includes(`on listener '${name}'`)) ?? "";
      assert.match(chosen("direct"), /TLS sni '' .*\(TLS listener socket\)/, "direct: Deno's TLS listener");
      assert.match(chosen("one_chain_logged"), /TLS sni 'a\.example\.com' alpn '[^']*' TLSv1\.[23];/);
      assert.doesNotMatch(chosen("one_chain_logged"), /TLS listener socket/);
      // the direct listener still knows the served certificate
      const all = await lines(proxy.logPath, n);
      const direct = all.find((l) => l.length === 4);
      assert.deepEqual(direct, ["a.example.com", "CN=a.example.com", "web", "200"]);
    },
  );

  await t.step("one TLS chain with tls_inspector: SNI, version and cipher are known", async () => {
    const r = await tlsCurl(proxy.port("one_chain_inspected"), ["--tlsv1.3"]);
    assert.equal(r.stdout, "hello from web", r.stderr);
    const [l] = (await lines(proxy.logPath, ++n)).slice(-1);
    assert.equal(l[0], "a.example.com");
    assert.equal(l[1], "TLSv1.3");
    assert.match(l[2], /^TLS_/);
    assert.equal(l[4], "a.example.com");
  });

  await t.step(
    "plain text: every TLS operator is -; a fault abort still logs the route's cluster",
    async () => {
      const r = await curlStatus(`http://127.0.0.1:${proxy.port("plain")}/x`);
      assert.equal(r.stdout, "429");
      const [l] = (await lines(proxy.logPath, ++n)).slice(-1);
      assert.deepEqual(l.slice(0, 11), Array(11).fill("-"));
      assert.deepEqual(l.slice(11), ["web", "429", "FI"]);
    },
  );

  await t.step(
    "a cluster_header naming no cluster logs %UPSTREAM_CLUSTER% as -, also on a local reply before the router",
    async () => {
      const r = await curlStatus(`http://127.0.0.1:${proxy.port("plain")}/hdr`, [
        "-H",
        "x-cluster: attacker-chosen",
      ]);
      assert.equal(r.stdout, "429");
      const [l] = (await lines(proxy.logPath, ++n)).slice(-1);
      assert.deepEqual(l.slice(11), ["-", "429", "FI"]);
      await curl(["-s", "-H", "x-cluster: web", `http://127.0.0.1:${proxy.port("plain")}/hdr`]);
      const [known] = (await lines(proxy.logPath, ++n)).slice(-1);
      assert.deepEqual(known.slice(11), ["web", "429", "FI"]);
    },
  );
});
