/**
 * Upstream HTTP/2 through the router: an HTTP/1.1 client (curl) -> nuncio -> an HTTP/2 origin (node:http2 h2c
 * with explicit_http_config, a Deno.serve HTTPS origin with auto_config/ALPN): bodies both ways, trailers,
 * multiplexing on one connection, stream limits, refused-stream retries and the protocol options.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bash,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { UPSTREAM_TLS_TYPE } from "../src/transport/tls_config.ts";
import type { ClusterImpl } from "../src/upstream/cluster.ts";
import { startGoawayOrigin, startH2Origin } from "./h2_upstream_peers.ts";
import { makePki, type TestPki } from "./tls_certs.ts";

type Obj = Record<string, unknown>;

const H2_EXPLICIT = (h2: Obj = {}): Obj => ({
  typed_extension_protocol_options: {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
      "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      explicit_http_config: { http2_protocol_options: h2 },
    },
  },
});

function route(prefix: string, cluster: string, extra: Obj = {}): Obj {
  return { match: { prefix }, route: { cluster, ...extra } };
}

function proxyYaml(clusters: Obj[], routes: Obj[]): string {
  return bootstrapYaml([httpListener({ virtualHosts: [anyHost(routes)] })], clusters);
}

Deno.test("upstream HTTP/2 over h2c (explicit_http_config)", async (t) => {
  await using origin = await startH2Origin(async (req, res, seen) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/trailers") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("body-part;");
      res.addTrailers({ "x-checksum": "abc123", "grpc-status": "0" });
      res.end();
      return;
    }
    if (url.pathname === "/slow") {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (url.pathname === "/download") {
      const total = Number(url.searchParams.get("bytes"));
      const chunk = new Uint8Array(64 * 1024).fill(97);
      res.writeHead(200, { "content-type": "application/octet-stream" });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            res.once("drain", pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain", "x-proto": req.httpVersion });
    res.end(
      `${req.method} ${req.url} v${req.httpVersion} body=${seen.bodyBytes} ` +
        `trailers=${JSON.stringify(seen.trailers)}`,
    );
  });
  await using proxy = await startProxy(proxyYaml(
    [staticCluster("h2c", [origin.port], H2_EXPLICIT())],
    [route("/", "h2c")],
  ));

  await t.step("a GET goes upstream as HTTP/2 with Host as :authority", async () => {
    const r = await curl(["-i", "-H", "Host: svc.example", proxy.url("/hello?x=1")]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.equal(res.body, "GET /hello?x=1 v2.0 body=0 trailers={}");
    const seen = origin.requests.at(-1)!;
    assert.equal(seen.authority, "svc.example");
    assert.equal(seen.headers["connection"], undefined);
    assert.equal(proxy.stat("cluster.h2c.upstream_cx_total"), 1);
    assert.equal(proxy.stat("cluster.h2c.upstream_rq_200"), 1);
  });

  await t.step("response trailers reach an HTTP/1.1 client as chunked trailers", async () => {
    const r = await curl(["--raw", "-i", proxy.url("/trailers")]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("transfer-encoding"), "chunked");
    assert.match(res.body, /body-part;/);
    assert.match(res.body, /0\r\nx-checksum: abc123\r\ngrpc-status: 0\r\n\r\n$/);
  });

  await t.step("request body and trailers go upstream", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port() });
    const req = "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n" +
      "Connection: close\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n";
    await conn.write(new TextEncoder().encode(req));
    let text = "";
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    const res = parseResponse(text);
    assert.equal(res.status, 200);
    assert.match(res.body, /POST \/echo v2\.0 body=5 trailers=\{"x-sum":"42"\}/);
    assert.equal(origin.requests.at(-1)!.headers["te"], "trailers");
  });

  await t.step("concurrent requests share one upstream connection", async () => {
    const before = origin.sessions;
    const rs = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", proxy.url(`/slow?${i}`)]),
      ),
    );
    for (const r of rs) assert.equal(r.stdout, "200");
    assert.equal(proxy.stat("cluster.h2c.upstream_cx_total"), 1);
    assert.equal(origin.sessions, before);
    assert.ok(origin.maxPerSession >= 2, `max per session ${origin.maxPerSession}`);
  });

  await t.step("64 MiB download and upload stream with bounded memory", async () => {
    const size = 64 << 20;
    const down = (n: number) =>
      bash(
        `curl -s --max-time 60 -o /dev/null -w '%{http_code} %{size_download}' ` +
          `'${proxy.url(`/download?bytes=${n}`)}'`,
      );
    const up = (n: number) =>
      bash(`head -c ${n} /dev/zero | curl -s --max-time 60 -T - ${proxy.url("/upload")}`);
    // warm up (heap sizing), then measure: growth must not follow the body size
    await down(32 << 20);
    await up(32 << 20);
    const rssBefore = Deno.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
    try {
      const d = await down(size);
      assert.equal(d.stdout, `200 ${size}`, d.stderr);
      const u = await up(size);
      assert.match(u.stdout, new RegExp(`^PUT /upload v2\\.0 body=${size} `), u.stderr);
    } finally {
      clearInterval(sampler);
    }
    const grownMb = (peak - rssBefore) / (1 << 20);
    assert.ok(grownMb < 48, `RSS grew by ${grownMb.toFixed(0)} MB`);
  });
});

Deno.test("upstream HTTP/2 stream limits, GOAWAY retries and protocol selection", async (t) => {
  await t.step(
    "max_concurrent_streams caps streams per connection; max_connections 1 makes the rest wait",
    async () => {
      await using origin = await startH2Origin(async (_req, res) => {
        await new Promise((r) => setTimeout(r, 50));
        res.end("ok");
      });
      const cluster = staticCluster("lim", [origin.port], {
        ...H2_EXPLICIT({ max_concurrent_streams: 2 }),
        circuit_breakers: { thresholds: [{ max_connections: 1 }] },
      });
      await using proxy = await startProxy(proxyYaml([cluster], [route("/", "lim")]));
      const rs = await Promise.all(
        Array.from({ length: 8 }, () => curl(["-o", "/dev/null", "-w", "%{http_code}", proxy.url("/")])),
      );
      for (const r of rs) assert.equal(r.stdout, "200");
      assert.equal(origin.maxPerSession, 2);
      assert.equal(proxy.stat("cluster.lim.upstream_cx_total"), 1);
      assert.ok(proxy.stat("cluster.lim.upstream_rq_pending_total") >= 6);
    },
  );

  await t.step("the peer's SETTINGS_MAX_CONCURRENT_STREAMS is honoured (more connections open)", async () => {
    await using origin = await startH2Origin(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 50));
      res.end("ok");
    }, { settings: { maxConcurrentStreams: 3 } });
    await using proxy = await startProxy(proxyYaml(
      [staticCluster("peer", [origin.port], { http2_protocol_options: {} })],
      [route("/", "peer")],
    ));
    // one request first, so the connection (and the peer's limit) is known
    assert.equal((await curl(["-w", "%{http_code}", "-o", "/dev/null", proxy.url("/")])).stdout, "200");
    const rs = await Promise.all(
      Array.from({ length: 9 }, () => curl(["-o", "/dev/null", "-w", "%{http_code}", proxy.url("/")])),
    );
    for (const r of rs) assert.equal(r.stdout, "200");
    assert.ok(origin.maxPerSession <= 3, `max per session ${origin.maxPerSession}`);
    assert.ok(proxy.stat("cluster.peer.upstream_cx_total") >= 1);
    assert.equal(proxy.stat("cluster.peer.http2.rx_reset"), 0);
  });

  await t.step(
    "a stream refused by GOAWAY is retried under refused-stream; without retries it is a 503 UR",
    async () => {
      await using origin = startGoawayOrigin();
      const routes = [
        route("/retry", "ga", { retry_policy: { retry_on: "refused-stream", num_retries: 2 } }),
        route("/", "ga"),
      ];
      await using proxy = await startProxy(
        proxyYaml([staticCluster("ga", [origin.port], H2_EXPLICIT())], routes),
      );
      const r = await curl(["-i", proxy.url("/retry")]);
      const res = parseResponse(r.stdout);
      assert.equal(res.status, 200, r.stdout);
      assert.equal(res.body, "second try");
      assert.equal(proxy.stat("cluster.ga.upstream_rq_retry"), 1);
      assert.equal(proxy.stat("cluster.ga.upstream_cx_total"), 2);
      origin.refuse = true;
      const r2 = await curl(["-i", proxy.url("/plain")]);
      const res2 = parseResponse(r2.stdout);
      assert.equal(res2.status, 503);
      assert.match(res2.body, /remote refused stream reset/);
      const logs = await proxy.log(2);
      assert.equal(logs.at(-1)!.flags, "UR");
    },
  );
});

/** The cluster object of a running proxy (pool inspection). */
function clusterOf(proxy: { plane: { clusters: { get(n: string): unknown } } }, name: string): ClusterImpl {
  return proxy.plane.clusters.get(name) as ClusterImpl;
}

function upstreamTls(pki: TestPki): Obj {
  return {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": UPSTREAM_TLS_TYPE,
      sni: "origin.internal",
      common_tls_context: { validation_context: { trusted_ca: { filename: pki.caPath } } },
    },
  };
}

const AUTO: Obj = {
  typed_extension_protocol_options: {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
      "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      auto_config: {},
    },
  },
};

/** A TLS origin offering only http/1.1 by ALPN, answering keep-alive requests with "h1 <path>". */
function startH1TlsOrigin(cert: string, key: string) {
  const l = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(cert),
    key: Deno.readTextFileSync(key),
    alpnProtocols: ["http/1.1"],
  });
  const conns = new Set<Deno.Conn>();
  const serveConn = async (c: Deno.TlsConn) => {
    conns.add(c);
    const buf = new Uint8Array(65536);
    let text = "";
    try {
      for (;;) {
        const n = await c.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
        let end;
        while ((end = text.indexOf("\r\n\r\n")) >= 0) {
          const path = text.split(" ")[1];
          text = text.slice(end + 4);
          const body = `h1 ${path}`;
          await c.write(
            new TextEncoder().encode(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`),
          );
        }
      }
    } catch { /* closed */ }
    conns.delete(c);
    c.close();
  };
  const loop = (async () => {
    for await (const c of l) void serveConn(c);
  })().catch(() => {});
  const close = async () => {
    l.close();
    for (const c of conns) c.close();
    await loop;
  };
  return { port: (l.addr as Deno.NetAddr).port, close, [Symbol.asyncDispose]: close };
}

Deno.test("upstream protocol selection: auto_config by ALPN, use_downstream_protocol_config", async (t) => {
  await using pki = await makePki();
  const leaf = await pki.leaf("origin", "origin.internal", ["DNS:origin.internal"]);
  const served: string[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(leaf.cert),
    key: Deno.readTextFileSync(leaf.key),
    onListen: () => {},
  }, async (req) => {
    const body = req.body ? (await req.arrayBuffer()).byteLength : 0;
    served.push(req.url);
    return new Response(`tls ${new URL(req.url).pathname} body=${body}`);
  });
  await using h1tls = startH1TlsOrigin(leaf.cert, leaf.key);
  await using plain = startOrigin("plain", (req) => new Response(`plain ${new URL(req.url).pathname}`));
  try {
    await using proxy = await startProxy(proxyYaml([
      staticCluster("auto", [server.addr.port], { ...AUTO, transport_socket: upstreamTls(pki) }),
      staticCluster("auto1", [h1tls.port], { ...AUTO, transport_socket: upstreamTls(pki) }),
      staticCluster("autoplain", [plain.port], AUTO),
      staticCluster("down", [plain.port], {
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            use_downstream_protocol_config: { http2_protocol_options: {} },
          },
        },
      }),
    ], [route("/a1", "auto1"), route("/ap", "autoplain"), route("/d", "down"), route("/", "auto")]));

    await t.step(
      "auto_config over TLS: ALPN h2 (Deno.serve HTTPS) uses one multiplexed connection",
      async () => {
        const rs = await Promise.all(
          Array.from({ length: 10 }, (_, i) => curl(["--data-binary", "x".repeat(i), proxy.url(`/x${i}`)])),
        );
        rs.forEach((r, i) => assert.equal(r.stdout, `tls /x${i} body=${i}`));
        const c = clusterOf(proxy, "auto");
        assert.equal(c.httpProtocol, 2);
        assert.equal(c.h2Pool!.connections, 1);
        assert.equal(c.pool.idleCount, 0);
        assert.equal(proxy.stat("cluster.auto.upstream_cx_total"), 1);
      },
    );

    await t.step("auto_config over TLS: ALPN http/1.1 falls back, reusing the connection", async () => {
      for (let i = 0; i < 3; i++) assert.equal((await curl([proxy.url(`/a1/${i}`)])).stdout, `h1 /a1/${i}`);
      const c = clusterOf(proxy, "auto1");
      assert.equal(c.h2Pool!.connections, 0);
      assert.equal(c.pool.idleCount, 1);
      assert.equal(proxy.stat("cluster.auto1.upstream_cx_total"), 1);
    });

    await t.step(
      "auto_config without TLS and use_downstream with an HTTP/1.1 client speak HTTP/1.1",
      async () => {
        assert.equal((await curl([proxy.url("/ap")])).stdout, "plain /ap");
        assert.equal(clusterOf(proxy, "autoplain").httpProtocol, 0);
        assert.equal(clusterOf(proxy, "autoplain").h2Pool, null);
        assert.equal((await curl([proxy.url("/d")])).stdout, "plain /d");
        assert.equal(clusterOf(proxy, "down").h2Pool!.connections, 0);
      },
    );
  } finally {
    await server.shutdown();
  }
});
