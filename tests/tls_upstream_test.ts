import assert from "node:assert/strict";
import { UPSTREAM_TLS_TYPE } from "../src/transport/tls_config.ts";
import { createTlsConnect, negotiatedAlpn } from "../src/transport/tls_upstream.ts";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  startProxy,
  staticCluster,
  tcpListener,
} from "./helpers.ts";
import { makePki, type TestPki } from "./tls_certs.ts";
import { upstreamTlsContext } from "../src/transport/tls_config.ts";

type Obj = Record<string, unknown>;

/** A Deno.serve HTTPS origin (h2 and http/1.1 by ALPN) answering with its name and the protocol it saw. */
function startTlsOrigin(name: string, cert: string, key: string) {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(cert),
    key: Deno.readTextFileSync(key),
    onListen: () => {},
  }, (req) => new Response(`tls hello from ${name} ${new URL(req.url).pathname}`));
  const close = async () => {
    await server.shutdown();
    await server.finished;
  };
  return { port: server.addr.port, close, [Symbol.asyncDispose]: close };
}

function tlsSocket(pki: TestPki, ctx: Obj): Obj {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": UPSTREAM_TLS_TYPE,
      ...ctx,
      common_tls_context: {
        validation_context: { trusted_ca: { filename: pki.caPath } },
        ...ctx.common_tls_context as Obj,
      },
    },
  };
}

const route = (cluster: string, prefix: string) => ({ match: { prefix }, route: { cluster } });

Deno.test("upstream TLS", async (t) => {
  await using pki = await makePki();
  const leaf = await pki.leaf("origin", "origin.internal", [
    "DNS:origin.internal",
    "URI:spiffe://mesh/ns/prod/sa/origin",
    "IP:127.0.0.1",
  ]);
  await using origin = startTlsOrigin("origin", leaf.cert, leaf.key);

  await t.step("the connect function verifies the CA and SANs and exposes the negotiated ALPN", async () => {
    const parse = (ctx: Obj) => upstreamTlsContext.parse(ctx);
    const base = { validation_context: { trusted_ca: { filename: pki.caPath } } };
    const h2 = createTlsConnect(parse({
      sni: "origin.internal",
      common_tls_context: {
        ...base,
        alpn_protocols: ["h2", "http/1.1"],
      },
    }));
    const c = await h2({ hostname: "127.0.0.1", port: origin.port });
    assert.equal(negotiatedAlpn(c), "h2");
    c.close();
    const h1 = createTlsConnect(parse({ common_tls_context: { ...base, alpn_protocols: ["http/1.1"] } }));
    const c1 = await h1({ hostname: "127.0.0.1", port: origin.port });
    assert.equal(negotiatedAlpn(c1), "http/1.1");
    c1.close();

    const matchers: [Obj, boolean][] = [
      [{ san_type: "DNS", matcher: { exact: "origin.internal" } }, true],
      [{ san_type: "DNS", matcher: { suffix: ".internal" } }, true],
      [{ san_type: "URI", matcher: { prefix: "spiffe://mesh/ns/prod/" } }, true],
      [{ san_type: "IP_ADDRESS", matcher: { exact: "127.0.0.1" } }, true],
      [{ san_type: "DNS", matcher: { safe_regex: { regex: "origin\\.[a-z]+" } } }, true],
      [{ san_type: "URI", matcher: { exact: "origin.internal" } }, false],
      [{ san_type: "DNS", matcher: { exact: "other.internal" } }, false],
      [{ san_type: "EMAIL", matcher: { contains: "origin" } }, false],
    ];
    for (const [m, ok] of matchers) {
      const connect = createTlsConnect(parse({
        common_tls_context: {
          validation_context: { ...base.validation_context, match_typed_subject_alt_names: [m] },
        },
      }));
      const r = await connect({ hostname: "127.0.0.1", port: origin.port }).then(
        (conn) => {
          conn.close();
          return "ok";
        },
        (e: Error) => e.message,
      );
      if (ok) assert.equal(r, "ok", JSON.stringify(m));
      else assert.match(r, /^TLS_error:\|CERTIFICATE_VERIFY_FAILED/, JSON.stringify(m));
    }
    // no trusted CA: the test CA is unknown to the default roots
    const untrusted = createTlsConnect(parse({}));
    await assert.rejects(untrusted({ hostname: "127.0.0.1", port: origin.port }), /TLS_error/);
  });

  await t.step(
    "routes to a TLS origin: SAN match succeeds, mismatch is 503 UF with the TLS reason",
    async () => {
      const clusters = [
        staticCluster("tls_ok", [origin.port], {
          transport_socket: tlsSocket(pki, {
            sni: "origin.internal",
            common_tls_context: {
              alpn_protocols: ["http/1.1"],
              validation_context: {
                trusted_ca: { filename: pki.caPath },
                match_typed_subject_alt_names: [{
                  san_type: "URI",
                  matcher: { exact: "spiffe://mesh/ns/prod/sa/origin" },
                }],
              },
            },
          }),
        }),
        staticCluster("tls_bad_san", [origin.port], {
          transport_socket: tlsSocket(pki, {
            common_tls_context: {
              alpn_protocols: ["http/1.1"],
              validation_context: {
                trusted_ca: { filename: pki.caPath },
                match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: "someone.else" } }],
              },
            },
          }),
        }),
      ];
      await using proxy = await startProxy(bootstrapYaml([
        httpListener({ virtualHosts: [anyHost([route("tls_bad_san", "/bad"), route("tls_ok", "/")])] }),
        tcpListener("tcp", "tls_ok"),
      ], clusters));
      const ok = await curl(["-i", proxy.url("/good")]);
      assert.match(ok.stdout, /^HTTP\/1\.1 200/);
      assert.match(ok.stdout, /tls hello from origin \/good$/);
      const bad = await curl(["-i", proxy.url("/bad")]);
      assert.match(bad.stdout, /^HTTP\/1\.1 503/);
      assert.match(bad.stdout, /transport failure reason: TLS_error:\|CERTIFICATE_VERIFY_FAILED/);
      const log = await proxy.log(2);
      assert.equal(log.find((e) => e.path === "/bad")?.flags, "UF");
      assert.ok(proxy.stat("cluster.tls_bad_san.upstream_cx_connect_fail") >= 1);
      // tcp_proxy over the same TLS cluster: plain HTTP in, TLS to the origin
      const viaTcp = await curl([`http://127.0.0.1:${proxy.port("tcp")}/tcp`]);
      assert.equal(viaTcp.stdout, "tls hello from origin /tcp");
    },
  );
});
