/**
 * Mutual TLS both ways with real peers: curl and openssl s_client presenting client certificates to nuncio
 * (require_client_certificate, trusted CA, SAN matchers, the ssl.* stats, x-forwarded-client-cert, the
 * %DOWNSTREAM_PEER_*% operators), nuncio presenting its client certificate to a node:tls origin that requires
 * one, and Envoy's double-proxy example (two nuncio processes' worth of proxies, mTLS between them).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  accessLog,
  anyHost,
  bootstrapYaml,
  curl,
  run,
  sleep,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
} from "./helpers.ts";
import { makeCrl, makePki, sClient, type TestPki } from "./tls_certs.ts";
import { loadTlsRuntime } from "../src/transport/cert_store.ts";
import { resolveSecret, secrets as registry, secretSchema } from "../src/transport/secret.ts";

type Obj = Record<string, unknown>;

const DOWNSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
const UPSTREAM = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const PEER_FORMAT = "%DOWNSTREAM_PEER_SUBJECT%|%DOWNSTREAM_PEER_ISSUER%|%DOWNSTREAM_PEER_URI_SAN%|" +
  "%DOWNSTREAM_PEER_DNS_SAN%|%DOWNSTREAM_PEER_FINGERPRINT_256%|%DOWNSTREAM_PEER_SERIAL%|%DOWNSTREAM_PEER_CERT%|" +
  "%DOWNSTREAM_PEER_CERT_V_START%|%DOWNSTREAM_TLS_VERSION%|%RESPONSE_CODE%\n";
const SSL = "listener.127.0.0.1_0.ssl.";

/** Envoy's URL encoding of a PEM block (urlEncodedPemEncodedPeerCertificate). */
function envoyUrlEncode(pem: string): string {
  return pem.replaceAll("\n", "%0A").replaceAll(" ", "%20").replaceAll("+", "%2B").replaceAll("/", "%2F")
    .replaceAll("=", "%3D");
}

async function fingerprint(path: string): Promise<string> {
  const r = await run("openssl", ["x509", "-in", path, "-noout", "-fingerprint", "-sha256"]);
  return r.stdout.trim().split("=")[1].replaceAll(":", "").toLowerCase();
}

function serverTls(pki: TestPki, name: string, ctx: Obj = {}, extra: Obj = {}): Obj {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": DOWNSTREAM,
      ...extra,
      common_tls_context: {
        tls_certificates: [{
          certificate_chain: { filename: `${pki.dir}/${name}.crt` },
          private_key: { filename: `${pki.dir}/${name}.key` },
        }],
        ...ctx,
      },
    },
  };
}

function hcmListener(name: string, transport: Obj | undefined, hcm: Obj = {}): Obj {
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: name,
          access_log: [accessLog("$LOG", PEER_FORMAT)],
          route_config: {
            name: "r",
            virtual_hosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
          },
          http_filters: [{
            name: "envoy.filters.http.router",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
          }],
          ...hcm,
        },
      }],
      ...(transport ? { transport_socket: transport } : {}),
    }],
  };
}

/** The access log's lines once there are `n` (bounded wait). */
async function logLines(path: string, n: number): Promise<string[][]> {
  for (let i = 0; i < 500; i++) {
    const l = (await Deno.readTextFile(path)).split("\n").filter((x) => x !== "");
    if (l.length >= n) return l.map((x) => x.split("|"));
    await sleep(10);
  }
  throw new Error(`Access log has fewer than ${n} lines`);
}

Deno.test("downstream mTLS: client certificates, ssl stats, x-forwarded-client-cert, peer operators", async (t) => {
  await using pki = await makePki();
  await using rogue = await makePki();
  await pki.leaf("proxy", "proxy.example.com", ["DNS:proxy.example.com", "URI:spiffe://nuncio/proxy"]);
  const client = await pki.leaf("client", "client.example.com", [
    "DNS:client.example.com",
    "URI:spiffe://nuncio/client",
  ], { clientAuth: true });
  const intruder = await pki.leaf("intruder", "intruder.example.com", ["DNS:intruder.example.com"], {
    clientAuth: true,
  });
  const forged = await rogue.leaf("client", "client.example.com", ["DNS:client.example.com"], {
    clientAuth: true,
  });
  await using origin = startOrigin("web");
  const validation = {
    trusted_ca: { filename: pki.caPath },
    match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "client.example.com" } }],
  };
  await using proxy = await startProxy(bootstrapYaml([
    hcmListener(
      "mtls",
      serverTls(pki, "proxy", { validation_context: validation, alpn_protocols: ["h2", "http/1.1"] }, {
        require_client_certificate: true,
      }),
      {
        forward_client_cert_details: "SANITIZE_SET",
        set_current_client_cert_details: { subject: true, uri: true, dns: true, cert: true, chain: true },
      },
    ),
  ], [staticCluster("web", [origin.port])]));
  const port = proxy.port();
  const base = ["--cacert", pki.caPath, "--resolve", `proxy.example.com:${port}:127.0.0.1`];
  const url = `https://proxy.example.com:${port}/x`;

  await t.step(
    "a trusted client with the expected SAN is served; XFCC replaces what the client sent",
    async () => {
      const r = await curl([
        ...base,
        "--cert",
        client.cert,
        "--key",
        client.key,
        "-H",
        "x-forwarded-client-cert: By=forged",
        url,
      ]);
      assert.equal(r.stdout, "hello from web", r.stderr);
      const pem = await Deno.readTextFile(client.cert);
      const hash = await fingerprint(client.cert);
      const want = `By=spiffe://nuncio/proxy;Hash=${hash};Cert="${envoyUrlEncode(pem)}";` +
        `Chain="${envoyUrlEncode(pem)}${envoyUrlEncode(pki.caPem)}";Subject="CN=client.example.com";` +
        "URI=spiffe://nuncio/client;DNS=client.example.com";
      assert.equal(origin.requests.at(-1)!.headers.get("x-forwarded-client-cert"), want);
      const [line] = await logLines(proxy.logPath, 1);
      const serial = (await pki.serialOf(client.cert)).toLowerCase();
      assert.deepEqual(line.slice(0, 7), [
        "CN=client.example.com",
        "CN=nuncio test CA",
        "spiffe://nuncio/client",
        "client.example.com",
        hash,
        serial.length % 2 ? `0${serial}` : serial,
        envoyUrlEncode(pem),
      ]);
      assert.match(line[7], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
      assert.deepEqual(line.slice(8), ["TLSv1.3", "200"]);
      assert.equal(proxy.stat(SSL + "handshake"), 1);
      assert.equal(proxy.stat(SSL + "no_certificate"), 0);
      assert.equal(proxy.stat(SSL + "versions.TLSv1.3"), 1);
      assert.equal(proxy.stat(SSL + "curves.X25519"), 1);
      assert.ok(
        Object.keys(proxy.plane.stats.snapshot().counters).some((k) => k.startsWith(SSL + "ciphers.TLS_")),
      );
    },
  );

  await t.step("no client certificate: refused, ssl.fail_verify_no_cert", async () => {
    const r = await curl([...base, url]);
    assert.notEqual(r.code, 0);
    assert.equal(proxy.stat(SSL + "fail_verify_no_cert"), 1);
  });

  await t.step("a certificate from another CA: refused, ssl.fail_verify_error", async () => {
    const r = await curl([...base, "--cert", forged.cert, "--key", forged.key, url]);
    assert.notEqual(r.code, 0);
    assert.equal(proxy.stat(SSL + "fail_verify_error"), 1);
  });

  await t.step("a trusted certificate without the SAN: refused, ssl.fail_verify_san", async () => {
    const r = await curl([...base, "--cert", intruder.cert, "--key", intruder.key, url]);
    assert.notEqual(r.code, 0);
    assert.equal(proxy.stat(SSL + "fail_verify_san"), 1);
    assert.equal(origin.requests.length, 1);
  });

  await t.step("HTTP/2 over the mTLS connection (ALPN h2), XFCC on every stream", async () => {
    const r = await curl([
      ...base,
      "--http2",
      "--cert",
      client.cert,
      "--key",
      client.key,
      "-w",
      "|%{http_version}",
      url,
      url,
    ]);
    assert.equal(r.stdout, "hello from web|2hello from web|2", r.stderr);
    const xfcc = origin.requests.slice(-2).map((q) => q.headers.get("x-forwarded-client-cert"));
    assert.equal(xfcc[0], xfcc[1]);
    assert.match(xfcc[0]!, /^By=spiffe:\/\/nuncio\/proxy;Hash=/);
    assert.equal(proxy.stat(SSL + "handshake"), 2);
  });

  await t.step(
    "openssl s_client over TLS 1.2 with a certificate: version, ECDHE cipher and curve stats",
    async () => {
      const r = await run("openssl", [
        "s_client",
        "-connect",
        `127.0.0.1:${port}`,
        "-tls1_2",
        "-servername",
        "proxy.example.com",
        "-CAfile",
        pki.caPath,
        "-cert",
        client.cert,
        "-key",
        client.key,
        "-ign_eof",
      ], "GET / HTTP/1.1\r\nhost: proxy.example.com\r\nconnection: close\r\n\r\n");
      assert.match(r.stdout, /hello from web/);
      assert.equal(proxy.stat(SSL + "versions.TLSv1.2"), 1);
      assert.equal(
        proxy.stat(SSL + "ciphers.ECDHE-ECDSA-AES128-GCM-SHA256") +
          proxy.stat(SSL + "ciphers.ECDHE-ECDSA-AES256-GCM-SHA384") +
          proxy.stat(SSL + "ciphers.ECDHE-ECDSA-CHACHA20-POLY1305"),
        1,
      );
      assert.equal(proxy.stat(SSL + "curves.X25519") + proxy.stat(SSL + "curves.P-256"), 3);
      assert.equal(proxy.stat(SSL + "handshake"), 3);
    },
  );
});

Deno.test("x-forwarded-client-cert modes and an optional client certificate", async (t) => {
  await using pki = await makePki();
  await pki.leaf("proxy", "proxy.example.com", ["DNS:proxy.example.com", "URI:spiffe://nuncio/proxy"]);
  const client = await pki.leaf("client", "client.example.com", ["DNS:client.example.com"], {
    clientAuth: true,
  });
  await using origin = startOrigin("web");
  // a trusted CA without require_client_certificate: a certificate is asked for, not required
  await pki.leaf("other", "other.example.com", ["DNS:other.example.com"]);
  // two certificates: node:tls picks one by SNI as Envoy does
  const twoCerts = ["proxy", "other"].map((n) => ({
    certificate_chain: { filename: `${pki.dir}/${n}.crt` },
    private_key: { filename: `${pki.dir}/${n}.key` },
  }));
  const optional = (name: string, mode: string, details?: Obj) =>
    hcmListener(
      name,
      serverTls(pki, "proxy", {
        tls_certificates: twoCerts,
        validation_context: { trusted_ca: { filename: pki.caPath } },
      }),
      {
        forward_client_cert_details: mode,
        ...(details ? { set_current_client_cert_details: details } : {}),
      },
    );
  await using proxy = await startProxy(bootstrapYaml([
    optional("append", "APPEND_FORWARD", { uri: true }),
    optional("forward", "FORWARD_ONLY"),
    optional("sanitize", "SANITIZE"),
    hcmListener("plain", undefined, { forward_client_cert_details: "ALWAYS_FORWARD_ONLY" }),
    hcmListener("plain_forward", undefined, { forward_client_cert_details: "FORWARD_ONLY" }),
  ], [staticCluster("web", [origin.port])]));
  const hash = await fingerprint(client.cert);
  const seen = async (listener: string, withCert: boolean, scheme = "https") => {
    const port = proxy.port(listener);
    const args = ["--cacert", pki.caPath, "--resolve", `proxy.example.com:${port}:127.0.0.1`];
    if (withCert) args.push("--cert", client.cert, "--key", client.key);
    const r = await curl([
      ...args,
      "-H",
      "x-forwarded-client-cert: By=a;Hash=b",
      `${scheme}://proxy.example.com:${port}/`,
    ]);
    assert.equal(r.stdout, "hello from web", r.stderr);
    return origin.requests.at(-1)!.headers.get("x-forwarded-client-cert");
  };

  await t.step(
    "APPEND_FORWARD appends this hop's element (URI= with none); FORWARD_ONLY keeps; SANITIZE drops",
    async () => {
      assert.equal(await seen("append", true), `By=a;Hash=b,By=spiffe://nuncio/proxy;Hash=${hash};URI=`);
      assert.equal(await seen("forward", true), "By=a;Hash=b");
      assert.equal(await seen("sanitize", true), null);
    },
  );

  await t.step(
    "without a client certificate the header is removed (not mTLS); the handshake counts no_certificate",
    async () => {
      const before = proxy.stat(SSL + "no_certificate");
      assert.equal(await seen("append", false), null);
      assert.equal(await seen("forward", false), null);
      assert.equal(proxy.stat(SSL + "no_certificate"), before + 2);
    },
  );

  await t.step("the served certificate follows the SNI", async () => {
    const port = proxy.port("forward");
    assert.equal(
      (await sClient(port, { servername: "other.example.com", caPath: pki.caPath })).cn,
      "other.example.com",
    );
    assert.equal(
      (await sClient(port, { servername: "proxy.example.com", caPath: pki.caPath })).cn,
      "proxy.example.com",
    );
  });

  await t.step("plain text: ALWAYS_FORWARD_ONLY forwards, FORWARD_ONLY removes", async () => {
    assert.equal(await seen("plain", false, "http"), "By=a;Hash=b");
    assert.equal(await seen("plain_forward", false, "http"), null);
  });
});

/** A node:tls HTTP/1.1 origin that requires a client certificate from `pki` and answers with its CN. */
async function startMtlsOrigin(pki: TestPki, name: string) {
  const tls = await import("node:tls");
  const sockets = new Set<import("node:tls").TLSSocket>();
  const seen: string[] = [];
  const server = tls.createServer({
    cert: await Deno.readTextFile(`${pki.dir}/${name}.crt`),
    key: await Deno.readTextFile(`${pki.dir}/${name}.key`),
    ca: pki.caPem,
    requestCert: true,
    rejectUnauthorized: true,
  }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let head = "";
    s.on("data", (d: Uint8Array) => {
      head += new TextDecoder().decode(d);
      if (!head.includes("\r\n\r\n")) return;
      const cn = String(s.getPeerCertificate().subject?.CN ?? "");
      seen.push(`${cn} ${s.getProtocol()}`);
      const body = `mtls hello ${cn}`;
      s.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { port, seen, close, [Symbol.asyncDispose]: close };
}

Deno.test("upstream mTLS: nuncio presents its client certificate (inline and from a static secret)", async (t) => {
  await using pki = await makePki();
  await using other = await makePki();
  await pki.leaf("origin", "origin.internal", ["DNS:origin.internal"]);
  const me = await pki.leaf("edge", "edge.internal", ["DNS:edge.internal"], { clientAuth: true });
  await using origin = await startMtlsOrigin(pki, "origin");
  const upstream = (common: Obj) => ({
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": UPSTREAM,
      sni: "origin.internal",
      common_tls_context: {
        validation_context: {
          trusted_ca: { filename: pki.caPath },
          match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "origin.internal" } }],
        },
        ...common,
      },
    },
  });
  const certFiles = { certificate_chain: { filename: me.cert }, private_key: { filename: me.key } };
  const listeners = [
    hcmListener("edge", undefined, {
      route_config: {
        name: "r",
        virtual_hosts: [anyHost([
          { match: { prefix: "/inline" }, route: { cluster: "inline" } },
          { match: { prefix: "/sds" }, route: { cluster: "sds" } },
          { match: { prefix: "/none" }, route: { cluster: "none" } },
          { match: { prefix: "/wrong_san" }, route: { cluster: "wrong_san" } },
          { match: { prefix: "/wrong_ca" }, route: { cluster: "wrong_ca" } },
        ])],
      },
    }),
  ];
  const clusters = [
    staticCluster("inline", [origin.port], { transport_socket: upstream({ tls_certificates: [certFiles] }) }),
    staticCluster("sds", [origin.port], {
      transport_socket: upstream({ tls_certificate_sds_secret_configs: [{ name: "edge_cert" }] }),
    }),
    staticCluster("none", [origin.port], { transport_socket: upstream({}) }),
    staticCluster("wrong_san", [origin.port], {
      transport_socket: upstream({
        tls_certificates: [certFiles],
        validation_context: {
          trusted_ca: { filename: pki.caPath },
          match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "other.internal" } }],
        },
      }),
    }),
    staticCluster("wrong_ca", [origin.port], {
      transport_socket: upstream({
        tls_certificates: [certFiles],
        validation_context: { trusted_ca: { filename: other.caPath } },
      }),
    }),
  ];
  const secrets = [{ name: "edge_cert", tls_certificate: certFiles }];
  // what the server does at start (prepareTls): static secrets into this event loop's registry
  await loadTlsRuntime();
  registry.set("edge_cert", resolveSecret(secretSchema.parse(secrets[0])), "", true);
  await using proxy = await startProxy(stringify({ static_resources: { listeners, clusters, secrets } }));
  const get = (path: string) => curl(["-w", "|%{http_code}", proxy.url(path)]);

  await t.step("inline tls_certificates and an SDS static secret both authenticate", async () => {
    assert.equal((await get("/inline")).stdout, "mtls hello edge.internal|200");
    assert.equal((await get("/sds")).stdout, "mtls hello edge.internal|200");
    assert.deepEqual(origin.seen, ["edge.internal TLSv1.3", "edge.internal TLSv1.3"]);
    assert.equal(proxy.stat("cluster.inline.ssl.handshake"), 1);
    assert.equal(proxy.stat("cluster.sds.ssl.handshake"), 1);
  });

  await t.step("without a client certificate the origin refuses it: 503", async () => {
    // TLS 1.3: the client's side of the handshake completes; the origin's certificate_required alert ends it
    const r = await get("/none");
    assert.match(r.stdout, /\|503$/);
    assert.equal(origin.seen.length, 2);
  });

  await t.step(
    "the origin's certificate refused: ssl.fail_verify_san and ssl.fail_verify_error",
    async () => {
      assert.match((await get("/wrong_san")).stdout, /CERTIFICATE_VERIFY_FAILED.*\|503$/);
      assert.equal(proxy.stat("cluster.wrong_san.ssl.fail_verify_san"), 1);
      assert.match((await get("/wrong_ca")).stdout, /TLS_error.*\|503$/);
      assert.equal(proxy.stat("cluster.wrong_ca.ssl.fail_verify_error"), 1);
      assert.equal(proxy.stat("cluster.wrong_ca.ssl.handshake"), 0);
    },
  );
});

Deno.test("Envoy's double-proxy example: tcp_proxy with mTLS between two proxies", async (t) => {
  await using pki = await makePki();
  await pki.leaf("backend", "proxy-postgres-backend.example.com", ["DNS:proxy-postgres-backend.example.com"]);
  const front = await pki.leaf("frontend", "proxy-postgres-frontend.example.com", [
    "DNS:proxy-postgres-frontend.example.com",
  ], { clientAuth: true });
  await using echo = startRawOrigin(async (c) => {
    const buf = new Uint8Array(1024);
    for (;;) {
      const n = await c.read(buf);
      if (n === null) return;
      await c.write(buf.subarray(0, n));
    }
  });
  const tcp = (cluster: string) => [{
    name: "envoy.filters.network.tcp_proxy",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
      stat_prefix: "postgres_tcp",
      cluster,
    },
  }];
  // as envoy-backend.yaml: tls_inspector, require_client_certificate, the frontend's DNS SAN
  await using backend = await startProxy(bootstrapYaml([{
    name: "postgres_listener",
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    listener_filters: [{
      name: "envoy.filters.listener.tls_inspector",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
      },
    }],
    filter_chains: [{
      filters: tcp("postgres_cluster"),
      transport_socket: serverTls(pki, "backend", {
        validation_context: {
          match_typed_subject_alt_names: [{
            san_type: "DNS",
            matcher: { exact: "proxy-postgres-frontend.example.com" },
          }],
          trusted_ca: { filename: pki.caPath },
        },
      }, { require_client_certificate: true }),
    }],
  }], [staticCluster("postgres_cluster", [echo.port])]));
  // as envoy-frontend.yaml: the client certificate and the backend's DNS SAN
  const frontendYaml = (withCert: boolean) =>
    bootstrapYaml([{
      name: "postgres_listener",
      address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
      filter_chains: [{ filters: tcp("postgres_cluster") }],
    }], [staticCluster("postgres_cluster", [backend.port()], {
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": UPSTREAM,
          common_tls_context: {
            ...(withCert
              ? {
                tls_certificates: [{
                  certificate_chain: { filename: front.cert },
                  private_key: { filename: front.key },
                }],
              }
              : {}),
            validation_context: {
              match_typed_subject_alt_names: [{
                san_type: "DNS",
                matcher: { exact: "proxy-postgres-backend.example.com" },
              }],
              trusted_ca: { filename: pki.caPath },
            },
          },
        },
      },
    })]);
  const talk = async (port: number, msg: string) => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await c.write(new TextEncoder().encode(msg));
      const buf = new Uint8Array(64);
      const n = await c.read(buf);
      return n === null ? null : new TextDecoder().decode(buf.subarray(0, n));
    } catch {
      return null;
    } finally {
      c.close();
    }
  };

  await t.step("bytes cross frontend -> mTLS -> backend -> origin and back", async () => {
    await using frontend = await startProxy(frontendYaml(true));
    assert.equal(await talk(frontend.port(), "select 1;"), "select 1;");
    assert.equal(backend.stat(SSL + "handshake"), 1);
    assert.equal(frontend.stat("cluster.postgres_cluster.ssl.handshake"), 1);
  });

  await t.step("a frontend without its client certificate is refused by the backend", async () => {
    await using frontend = await startProxy(frontendYaml(false));
    assert.equal(await talk(frontend.port(), "select 1;"), null);
    for (let i = 0; i < 200 && backend.stat(SSL + "fail_verify_no_cert") === 0; i++) await sleep(10);
    assert.equal(backend.stat(SSL + "fail_verify_no_cert"), 1);
  });
});

Deno.test("client certificates checked against a CRL, and a validation context from a secret", async (t) => {
  await using pki = await makePki();
  await pki.leaf("proxy", "proxy.example.com", ["DNS:proxy.example.com"]);
  const good = await pki.leaf("good", "good.example.com", ["DNS:good.example.com"], { clientAuth: true });
  const bad = await pki.leaf("bad", "bad.example.com", ["DNS:bad.example.com"], { clientAuth: true });
  const crl = await makeCrl(pki, [bad.cert]);
  await using origin = startOrigin("web");
  await loadTlsRuntime();
  registry.set(
    "client_ca",
    resolveSecret(secretSchema.parse({
      name: "client_ca",
      validation_context: { trusted_ca: { filename: pki.caPath }, crl: { filename: crl } },
    })),
    "",
    true,
  );
  const cluster = staticCluster("web", [origin.port]);
  const withCert = async (proxy: { port(): number }, c: { cert: string; key: string }) => {
    const port = proxy.port();
    return await curl([
      "--cacert",
      pki.caPath,
      "--resolve",
      `proxy.example.com:${port}:127.0.0.1`,
      "--cert",
      c.cert,
      "--key",
      c.key,
      `https://proxy.example.com:${port}/`,
    ]);
  };
  for (
    const [name, ctx] of [
      ["inline crl", {
        validation_context: { trusted_ca: { filename: pki.caPath }, crl: { filename: crl } },
      }],
      ["validation_context_sds_secret_config", {
        validation_context_sds_secret_config: { name: "client_ca" },
      }],
    ] as const
  ) {
    await t.step(
      `${name}: a revoked certificate is refused (fail_verify_error), a good one served`,
      async () => {
        await using proxy = await startProxy(bootstrapYaml([
          hcmListener("crl", serverTls(pki, "proxy", ctx, { require_client_certificate: true })),
        ], [cluster]));
        assert.notEqual((await withCert(proxy, bad)).code, 0);
        assert.equal(proxy.stat(SSL + "fail_verify_error"), 1);
        assert.equal((await withCert(proxy, good)).stdout, "hello from web");
        assert.equal(proxy.stat(SSL + "handshake"), 1);
      },
    );
  }
});
