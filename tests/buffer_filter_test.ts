/**
 * The buffer filter end to end: 413 over max_request_bytes, a slow client's chunked body reaching the origin in
 * one piece (with content-length) only after it fully arrived, BufferPerRoute disabled and overridden.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  rawExchange,
  safeClose,
  sleep,
  startOrigin,
  startProxy,
  staticCluster,
  writeAll,
} from "./helpers.ts";

const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};
const PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute";

function chunk(s: string): string {
  return `${s.length.toString(16)}\r\n${s}\r\n`;
}

Deno.test("http buffer filter", async (t) => {
  await using origin = startOrigin("web", (_req, seen) => new Response(`got ${seen.bodyBytes}`));
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      statPrefix: "ingress",
      virtualHosts: [anyHost([
        {
          match: { prefix: "/stream" },
          route: { cluster: "web" },
          typed_per_filter_config: { "envoy.filters.http.buffer": { "@type": PER_ROUTE, disabled: true } },
        },
        {
          match: { prefix: "/big" },
          route: { cluster: "web" },
          typed_per_filter_config: {
            "envoy.filters.http.buffer": { "@type": PER_ROUTE, buffer: { max_request_bytes: 100 } },
          },
        },
        { match: { prefix: "/" }, route: { cluster: "web" } },
      ])],
      hcm: {
        http_filters: [{
          name: "envoy.filters.http.buffer",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            max_request_bytes: 16,
          },
        }, ROUTER],
      },
    })],
    [staticCluster("web", [origin.port])],
  ));

  await t.step("a body within max_request_bytes goes through", async () => {
    const r = parseResponse((await curl(["-i", "--data-binary", "0123456789", proxy.url("/small")])).stdout);
    assert.equal(r.status, 200);
    assert.equal(r.body, "got 10");
    assert.equal(origin.requests.at(-1)!.body, "0123456789");
  });

  await t.step("a body over max_request_bytes gets 413 and never reaches the origin", async () => {
    const before = origin.requests.length;
    const r = parseResponse(
      (await curl(["-i", "--data-binary", "x".repeat(40), proxy.url("/large")])).stdout,
    );
    assert.equal(r.status, 413);
    assert.equal(r.body, "Payload Too Large");
    assert.equal(origin.requests.length, before);
    assert.equal(proxy.stat("http.ingress.downstream_rq_too_large"), 1);
    const log = await proxy.log(2);
    assert.equal(log[1].code, "413");
    assert.equal(log[1].details, "request_payload_too_large");
  });

  await t.step("a slow chunked body reaches the origin only when complete, in one piece", async () => {
    const upstreamBefore = proxy.stat("cluster.web.upstream_rq_total");
    const before = origin.requests.length;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port() });
    try {
      await writeAll(
        conn,
        "POST /slow HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n" +
          chunk("abcd"),
      );
      await sleep(150);
      await writeAll(conn, chunk("efgh"));
      await sleep(150);
      assert.equal(origin.requests.length, before, "the origin saw the request before its body was complete");
      assert.equal(proxy.stat("cluster.web.upstream_rq_total"), upstreamBefore);
      await writeAll(conn, chunk("ijk") + "0\r\n\r\n");
      const buf = new Uint8Array(4096);
      let text = "";
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      const r = parseResponse(text);
      assert.equal(r.status, 200);
      assert.equal(r.body, "got 11");
    } finally {
      safeClose(conn);
    }
    const seen = origin.requests.at(-1)!;
    assert.equal(seen.body, "abcdefghijk");
    assert.equal(seen.headers.get("content-length"), "11");
    assert.equal(seen.headers.get("transfer-encoding"), null);
  });

  await t.step("BufferPerRoute disabled streams the body; buffer overrides the limit", async () => {
    const r = await rawExchange(proxy.port(), [
      "POST /stream HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
      chunk("y".repeat(40)) + "0\r\n\r\n",
    ], { timeoutMs: 3000 });
    assert.equal(parseResponse(r.text).status, 200);
    assert.equal(origin.requests.at(-1)!.headers.get("transfer-encoding"), "chunked");
    const big = parseResponse(
      (await curl(["-i", "--data-binary", "z".repeat(90), proxy.url("/big")])).stdout,
    );
    assert.equal(big.status, 200);
    assert.equal(big.body, "got 90");
    const over = parseResponse(
      (await curl(["-i", "--data-binary", "z".repeat(101), proxy.url("/big")])).stdout,
    );
    assert.equal(over.status, 413);
  });
});
