/**
 * Downstream HTTP/2 end to end: h2c with prior knowledge and h2 over TLS (ALPN) through nuncio to HTTP/1.1
 * origins, with curl, nghttp, h2load and node:http2 as clients; streaming bodies both ways, trailers, gRPC
 * local replies, connection limits ending in GOAWAY, and abusive connections that must not disturb others.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bash,
  behaviors,
  bootstrapYaml,
  curl,
  httpListener,
  readHead,
  refusedPort,
  run,
  sleep,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
  writeAll,
} from "./helpers.ts";
import { abuse, FrameBuilder, h2Request, h2Session } from "./h2_peers.ts";
import { downstreamTls, makePki } from "./tls_certs.ts";
import { ErrorCode, SettingId } from "../src/http/h2/constants.ts";

const route = (cluster: string, extra: Record<string, unknown> = {}) => ({
  match: { prefix: "/" },
  route: { cluster, ...extra },
});

function proxyYaml(cluster: unknown, hcm: Record<string, unknown> = {}, routeExtra = {}): string {
  return bootstrapYaml([httpListener({ virtualHosts: [anyHost([route("c", routeExtra)])], hcm })], [cluster]);
}

Deno.test("downstream HTTP/2", async (t) => {
  await using origin = startOrigin("a");

  await t.step("curl --http2-prior-knowledge: GET and streamed POST (chunked upstream), stats", async () => {
    await using proxy = await startProxy(proxyYaml(staticCluster("c", [origin.port])));
    const r = await curl(["--http2-prior-knowledge", "-i", proxy.url("/x?q=1")]);
    assert.match(r.stdout, /^HTTP\/2 200/);
    assert.ok(r.stdout.endsWith("hello from a"), r.stdout);
    assert.equal(origin.requests.at(-1)!.path, "/x?q=1");
    // stdin upload: no content-length on the h2 request, so the upstream request is chunked
    const up = await bash(
      `head -c 3000000 /dev/urandom | curl -s --http2-prior-knowledge -T - -X POST -o /dev/null -w '%{http_code} %{http_version}' ${
        proxy.url("/up")
      }`,
    );
    assert.equal(up.stdout, "200 2");
    const seen = origin.requests.at(-1)!;
    assert.equal(seen.bodyBytes, 3000000);
    assert.equal(seen.headers.get("content-length"), null);
    assert.equal(proxy.stat("http.ingress.downstream_cx_http2_total"), 2);
    assert.equal(proxy.stat("http.ingress.downstream_rq_http2_total"), 2);
    assert.equal(proxy.stat("http.ingress.downstream_rq_2xx"), 2);
    const log = await proxy.log(2);
    assert.equal(log[1].bytesReceived, "3000000");
  });

  await t.step("codec_type HTTP1 does not speak HTTP/2; HTTP2 refuses HTTP/1.1", async () => {
    await using p1 = await startProxy(proxyYaml(staticCluster("c", [origin.port]), { codec_type: "HTTP1" }));
    const r = await curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", p1.url("/")]);
    assert.notEqual(r.stdout, "200");
    await using p2 = await startProxy(proxyYaml(staticCluster("c", [origin.port]), { codec_type: "HTTP2" }));
    const h1 = await curl(["--http1.1", "-o", "/dev/null", "-w", "%{http_code}", p2.url("/")]);
    assert.equal(h1.stdout, "000");
    const h2 = await curl(["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", p2.url("/")]);
    assert.equal(h2.stdout, "200");
  });

  await t.step("h2 over TLS via ALPN and HTTP/1.1 on the same listener", async () => {
    await using pki = await makePki();
    await pki.leaf("a", "localhost", ["DNS:localhost"]);
    const l = httpListener({ virtualHosts: [anyHost([route("c")])] }) as {
      filter_chains: Record<string, unknown>[];
    };
    l.filter_chains[0].transport_socket = downstreamTls(pki, ["a"], ["h2", "http/1.1"]);
    await using proxy = await startProxy(bootstrapYaml([l], [staticCluster("c", [origin.port])]));
    const url = `https://localhost:${proxy.port()}/tls`;
    const h2 = await curl([
      "--http2",
      "--cacert",
      pki.caPath,
      "-o",
      "/dev/null",
      "-w",
      "%{http_version} %{http_code}",
      url,
    ]);
    assert.equal(h2.stdout, "2 200", h2.stderr);
    const h1 = await curl([
      "--http1.1",
      "--cacert",
      pki.caPath,
      "-o",
      "/dev/null",
      "-w",
      "%{http_version} %{http_code}",
      url,
    ]);
    assert.equal(h1.stdout, "1.1 200", h1.stderr);
    assert.equal(proxy.stat("http.ingress.downstream_cx_http2_total"), 1);
    assert.equal(proxy.stat("http.ingress.downstream_cx_http1_total"), 1);
    assert.equal(origin.requests.at(-1)!.headers.get("x-forwarded-proto"), "https");
  });

  await t.step("nghttp and h2load through nuncio: every response 2xx", async () => {
    await using proxy = await startProxy(proxyYaml(staticCluster("c", [origin.port])));
    const ng = await run("nghttp", ["-n", "-s", proxy.url("/a"), proxy.url("/b"), proxy.url("/c")]);
    assert.equal(ng.code, 0, ng.stderr + ng.stdout);
    const h2l = await run("h2load", ["-n", "2000", "-c", "4", "-m", "10", proxy.url("/load")]);
    assert.match(h2l.stdout, /2000 succeeded, 0 failed, 0 errored/, h2l.stdout);
    assert.match(h2l.stdout, /status codes: 2000 2xx/, h2l.stdout);
    assert.equal(proxy.stat("http.ingress.downstream_rq_active"), 0);
  });

  await t.step("large download and upload stream with bounded memory", async () => {
    const big = 256 * 1024 * 1024;
    await using bigOrigin = startOrigin("big", (req) => {
      if (req.method === "GET") {
        let left = big;
        const chunk = new Uint8Array(65536);
        return new Response(
          new ReadableStream({
            pull(c) {
              if (left <= 0) return c.close();
              c.enqueue(chunk.slice(0, Math.min(left, chunk.length)));
              left -= chunk.length;
            },
          }),
        );
      }
      return new Response("ok");
    });
    await using proxy = await startProxy(proxyYaml(staticCluster("c", [bigOrigin.port]), {
      http2_protocol_options: { initial_stream_window_size: 65536, initial_connection_window_size: 1048576 },
    }));
    const rss0 = Deno.memoryUsage().rss;
    const down = await curl([
      "--http2-prior-knowledge",
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      proxy.url("/big"),
    ]);
    assert.equal(down.stdout, String(big));
    const up = await bash(
      `head -c ${big} /dev/zero | curl -s --http2-prior-knowledge -T - -o /dev/null -w '%{http_code}' ${
        proxy.url("/up")
      }`,
    );
    assert.equal(up.stdout, "200");
    assert.equal(bigOrigin.requests.at(-1)!.bodyBytes, big);
    const grew = Deno.memoryUsage().rss - rss0;
    // origin and proxy share this process: growth far below the 512 MiB moved shows nothing accumulates
    assert.ok(grew < 128 * 1024 * 1024, `RSS grew ${grew} bytes moving 2 x 256 MiB`);
  });

  await t.step(
    "trailers: upstream response trailers reach the h2 client; request trailers go upstream",
    async () => {
      let upstreamRequest = "";
      await using raw = startRawOrigin(async (conn) => {
        const buf = new Uint8Array(65536);
        let text = await readHead(conn);
        while (!text.includes("\r\n0\r\n") || !text.endsWith("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        upstreamRequest = text;
        await writeAll(
          conn,
          "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n" +
            "5\r\nhello\r\n0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\n\r\n",
        );
      });
      await using proxy = await startProxy(proxyYaml(staticCluster("c", [raw.port])));
      const r = await h2Request(proxy.port(), {
        method: "POST",
        path: "/svc/M",
        headers: { "content-type": "application/grpc", te: "trailers" },
        body: [new TextEncoder().encode("ping")],
        trailers: { "x-req-trailer": "yes" },
      });
      assert.equal(r.status, 200);
      assert.equal(new TextDecoder().decode(r.body), "hello");
      assert.equal(r.trailers["grpc-status"], "0");
      assert.equal(r.trailers["grpc-message"], "fine");
      assert.match(upstreamRequest, /transfer-encoding: chunked/i);
      assert.match(upstreamRequest, /x-req-trailer: yes/);
    },
  );

  await t.step("gRPC local replies: 200 with trailers-only grpc-status (UF -> 14)", async () => {
    await using proxy = await startProxy(proxyYaml(staticCluster("c", [refusedPort()])));
    const g = { "content-type": "application/grpc", te: "trailers" };
    const r = await h2Request(proxy.port(), { method: "POST", path: "/svc/M", headers: g, body: [] });
    assert.equal(r.status, 200);
    assert.equal(r.headers["grpc-status"], "14");
    assert.match(String(r.headers["grpc-message"]), /upstream connect error/);
    assert.equal(r.body.length, 0);
    // not gRPC: the usual 503
    const plain = await h2Request(proxy.port(), { path: "/x" });
    assert.equal(plain.status, 503);
    const log = await proxy.log(2);
    assert.equal(log[0].code, "200");
    assert.equal(log[0].flags, "UF");
  });

  await t.step(
    "grpc_http1_bridge: an HTTP/1.1 gRPC caller gets grpc-status in headers, 503 on failure",
    async () => {
      const reply = (status: string) =>
        "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n" +
        `5\r\nhello\r\n0\r\ngrpc-status: ${status}\r\ngrpc-message: m${status}\r\n\r\n`;
      let next = "5";
      await using raw = startRawOrigin(async (conn) => {
        await readHead(conn);
        await writeAll(conn, reply(next));
      });
      const l = httpListener({ virtualHosts: [anyHost([route("c")])] }) as {
        filter_chains: { filters: { typed_config: { http_filters: unknown[] } }[] }[];
      };
      l.filter_chains[0].filters[0].typed_config.http_filters.unshift({
        name: "envoy.filters.http.grpc_http1_bridge",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_http1_bridge.v3.Config",
        },
      });
      await using proxy = await startProxy(bootstrapYaml([l], [staticCluster("c", [raw.port])]));
      const call = () =>
        curl([
          "-i",
          "--http1.1",
          "-H",
          "content-type: application/grpc",
          "--data-binary",
          "x",
          proxy.url("/svc/M"),
        ]);
      const bad = await call();
      assert.match(bad.stdout, /^HTTP\/1.1 503/);
      assert.match(bad.stdout, /grpc-status: 5\r\n/);
      assert.match(bad.stdout, /grpc-message: m5\r\n/);
      assert.match(bad.stdout, /content-length: 5\r\n/);
      assert.ok(bad.stdout.endsWith("\r\n\r\nhello"), bad.stdout);
      next = "0";
      const ok = await call();
      assert.match(ok.stdout, /^HTTP\/1.1 200/);
      assert.match(ok.stdout, /grpc-status: 0\r\n/);
      // HTTP/2 callers are not bridged: trailers stay trailers
      const h2 = await h2Request(proxy.port(), {
        method: "POST",
        path: "/svc/M",
        headers: { "content-type": "application/grpc" },
        body: [new Uint8Array(1)],
      });
      assert.equal(h2.headers["grpc-status"], undefined);
      assert.equal(h2.trailers["grpc-status"], "0");
    },
  );

  await t.step(
    "grpc_http1_bridge: a held response over the buffer limit ends as a local 503 (UNKNOWN)",
    async () => {
      const big = "x".repeat(8192);
      await using raw = startRawOrigin(async (conn) => {
        await readHead(conn);
        await writeAll(
          conn,
          "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n" +
            `2000\r\n${big}\r\n0\r\ngrpc-status: 0\r\n\r\n`,
        );
      });
      const l = httpListener({ virtualHosts: [anyHost([route("c")])] }) as {
        per_connection_buffer_limit_bytes?: number;
        filter_chains: { filters: { typed_config: { http_filters: unknown[] } }[] }[];
      };
      l.per_connection_buffer_limit_bytes = 4096;
      l.filter_chains[0].filters[0].typed_config.http_filters.unshift({
        name: "envoy.filters.http.grpc_http1_bridge",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_http1_bridge.v3.Config",
        },
      });
      await using proxy = await startProxy(bootstrapYaml([l], [staticCluster("c", [raw.port])]));
      const r = await curl([
        "-i",
        "--http1.1",
        "-H",
        "content-type: application/grpc",
        "--data-binary",
        "x",
        proxy.url("/svc/M"),
      ]);
      assert.match(r.stdout, /^HTTP\/1.1 503/);
      assert.match(r.stdout, /grpc-status: 2\r\n/); // HTTP 500 maps to UNKNOWN (gRPC status mapping)
      assert.ok(!r.stdout.includes(big), "the oversized body never went out");
      const log = await proxy.log(1);
      assert.equal(log[0].details, "response_payload_too_large");
      assert.equal(proxy.stat("http.ingress.downstream_rq_5xx"), 1);
    },
  );

  await t.step("grpc-timeout bounded by route max_stream_duration: DEADLINE_EXCEEDED", async () => {
    await using raw = startRawOrigin(behaviors.stall());
    await using proxy = await startProxy(
      proxyYaml(staticCluster("c", [raw.port]), {}, {
        max_stream_duration: { grpc_timeout_header_max: "10s" },
      }),
    );
    const t0 = Date.now();
    const r = await h2Request(proxy.port(), {
      method: "POST",
      path: "/svc/Slow",
      headers: { "content-type": "application/grpc", "grpc-timeout": "300m" },
      body: [new Uint8Array(5)],
    });
    const took = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(r.headers["grpc-status"], "4");
    assert.ok(took >= 250 && took < 5000, `took ${took} ms`);
    assert.equal(proxy.stat("http.ingress.downstream_rq_max_duration_reached"), 1);
  });

  await t.step("max_requests_per_connection and idle timeout end the connection with GOAWAY", async () => {
    await using proxy = await startProxy(proxyYaml(staticCluster("c", [origin.port]), {
      common_http_protocol_options: { max_requests_per_connection: 3, idle_timeout: "0.3s" },
    }));
    const s = h2Session(proxy.port());
    assert.deepEqual(await Promise.all([s.get("/1"), s.get("/2"), s.get("/3")]), [200, 200, 200]);
    await s.closed;
    assert.ok(s.goaways.includes(0), `goaways ${s.goaways}`);
    assert.equal(proxy.stat("http.ingress.downstream_cx_max_requests_reached"), 1);
    const idle = h2Session(proxy.port());
    assert.equal(await idle.get("/idle"), 200);
    await idle.closed;
    assert.deepEqual(idle.goaways, [0]);
    assert.equal(proxy.stat("http.ingress.downstream_cx_idle_timeout"), 1);
  });

  await t.step("abuse ends with GOAWAY or resets; a normal h2 client keeps working", async () => {
    await using proxy = await startProxy(proxyYaml(staticCluster("c", [origin.port])));
    const port = proxy.port();
    const normal = h2Session(port);
    assert.equal(await normal.get("/before"), 200);
    const get = (b: FrameBuilder, id: number) =>
      b.headers(id, [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "t"]], true);
    // rapid reset: open and cancel streams as fast as possible
    const rr = new FrameBuilder().preface().settings();
    for (let id = 1; id < 4000; id += 2) get(rr, id).rst(id, ErrorCode.CANCEL);
    // CONTINUATION flood: a header block that never ends
    const cf = new FrameBuilder().preface().settings();
    cf.headers(1, [[":method", "GET"], [":scheme", "http"], [":path", "/"]], true, true);
    const junk = new Uint8Array(16000).fill(0x40);
    for (let i = 0; i < 400; i++) cf.raw(9, 0, 1, junk);
    // HPACK bomb: one big literal, then thousands of indexed references to it
    const hb = new FrameBuilder().preface().settings();
    const bomb = new Uint8Array(16384);
    let n = 0;
    const big = "x".repeat(4000);
    const lit = hb.block([[":method", "GET"], [":scheme", "http"], [":path", "/"], ["bomb", big]]);
    bomb.set(lit, 0);
    n = lit.length;
    while (n < bomb.length) bomb[n++] = 0xbe; // indexed: dynamic table entry 1
    hb.raw(1, 0x5, 1, bomb);
    // SETTINGS and PING floods without reading the answers
    const sf = new FrameBuilder().preface().settings();
    for (let i = 0; i < 20000; i++) sf.settings([[SettingId.ENABLE_PUSH, 0]]);
    const pf = new FrameBuilder().preface().settings();
    for (let i = 0; i < 20000; i++) pf.ping();
    const outcomes = await Promise.all([
      abuse(port, rr.take()),
      abuse(port, cf.take()),
      abuse(port, hb.take()),
      abuse(port, sf.take(), 3000),
      abuse(port, pf.take(), 3000),
    ]);
    const [rapid, cont, hpack, settings, ping] = outcomes;
    assert.equal(rapid.goaway, ErrorCode.ENHANCE_YOUR_CALM, JSON.stringify(rapid));
    assert.ok(cont.goaway === ErrorCode.ENHANCE_YOUR_CALM && cont.closed, JSON.stringify(cont));
    assert.ok(hpack.closed && (hpack.goaway > 0 || hpack.rsts > 0), JSON.stringify(hpack));
    assert.ok(settings.closed, JSON.stringify(settings));
    assert.ok(ping.closed, JSON.stringify(ping));
    assert.equal(await normal.get("/after"), 200);
    const r = await curl([
      "--http2-prior-knowledge",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      proxy.url("/curl"),
    ]);
    assert.equal(r.stdout, "200");
    await normal.close();
    await sleep(50);
    assert.ok(proxy.stat("http2.too_many_premature_resets") >= 1);
    assert.ok(proxy.stat("http2.header_overflow") >= 1);
  });
});
