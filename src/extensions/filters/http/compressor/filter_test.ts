import assert from "node:assert/strict";
import zlib from "node:zlib";
import "../../../../registry/builtin.ts";
import { testContext } from "../../../../access_log/test_util.ts";
import { StreamInfo } from "../../../../common/stream_info.ts";
import type { HttpFilter, HttpFilterCallbacks, HttpRequest } from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import { compressorSchema } from "./config.ts";
import { COMPRESSOR_NAME, CompressorFilterFactory } from "./filter.ts";

const LIB = "type.googleapis.com/envoy.extensions.compression";
const BODY = new TextEncoder().encode(JSON.stringify(Array.from({ length: 400 }, (_, i) => ({ i }))));

function factory(
  ctx: FactoryContext,
  lib: string,
  extra: Record<string, unknown> = {},
  name = COMPRESSOR_NAME,
) {
  const config = compressorSchema.parse({
    compressor_library: { name: "lib", typed_config: { "@type": `${LIB}.${lib}` } },
    ...extra,
  });
  return new CompressorFilterFactory(config, ctx, name, "in");
}

function stream(reqHeaders: [string, string][], method = "GET"): HttpFilterCallbacks {
  const request: HttpRequest = {
    method,
    path: "/",
    authority: "x",
    scheme: "http",
    protocol: "HTTP/1.1",
    headers: HeaderMap.from(reqHeaders),
    contentLength: 0,
  };
  return { streamInfo: new StreamInfo(), request, route: () => null } as unknown as HttpFilterCallbacks;
}

/** One response through `filters` (encode order: last first): its headers and the body bytes that came out. */
function respond(filters: HttpFilter[], headers: [string, string][], body = BODY) {
  for (const f of filters) f.decodeHeaders?.(true);
  const res = { status: 200, headers: HeaderMap.from(headers) };
  for (let i = filters.length - 1; i >= 0; i--) filters[i].encodeHeaders!(res, false);
  let data: Uint8Array = body;
  for (let i = filters.length - 1; i >= 0; i--) {
    const r = filters[i].encodeData!(data, true);
    if (r instanceof Uint8Array) data = r;
  }
  return { headers: res.headers, body: data };
}

Deno.test("compressor filter: legacy stat tree, deprecated fields, runtime-less enabled flag", () => {
  const ctx = testContext();
  // no response_direction_config: the deprecated fields apply and the stats have no "response." level
  const f = factory(ctx, "gzip.compressor.v3.Gzip", {
    content_length: 10,
    content_type: ["application/json"],
    disable_on_etag_header: true,
  });
  const r = respond([f.createFilter(stream([["accept-encoding", "gzip"]]))], [[
    "content-type",
    "application/json",
  ]]);
  assert.equal(r.headers.get("content-encoding"), "gzip");
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(r.body)), BODY);
  const c = ctx.stats.snapshot().counters;
  assert.equal(c["http.in.compressor.lib.gzip.compressed"], 1);
  assert.equal(c["http.in.compressor.lib.gzip.header_compressor_used"], 1);
  assert.equal(c["http.in.compressor.lib.gzip.request.not_compressed"], 1);
  assert.equal(c["http.in.compressor.lib.gzip.response.compressed"], undefined);
  const etag = respond([f.createFilter(stream([["accept-encoding", "gzip"]]))], [
    ["content-type", "application/json"],
    ["etag", '"x"'],
  ]);
  assert.equal(etag.headers.get("content-encoding"), undefined);
  assert.equal(ctx.stats.snapshot().counters["http.in.compressor.lib.gzip.not_compressed_etag"], 1);
  const off = factory(testContext(), "gzip.compressor.v3.Gzip", {
    response_direction_config: { common_config: { enabled: { default_value: false, runtime_key: "nope" } } },
  });
  const o = respond([off.createFilter(stream([["accept-encoding", "gzip"]]))], [[
    "content-type",
    "text/html",
  ]]);
  assert.equal(o.headers.get("content-encoding"), undefined);
  assert.equal(o.headers.get("vary"), undefined);
});

Deno.test("compressor filter: two filters of a chain agree on one encoding per stream", () => {
  const ctx = testContext();
  const gz = factory(ctx, "gzip.compressor.v3.Gzip", { response_direction_config: {} }, "gz");
  const br = factory(ctx, "brotli.compressor.v3.Brotli", { response_direction_config: {} }, "br");
  const run = (ae: string) => {
    const cb = stream([["accept-encoding", ae]]);
    return respond([gz.createFilter(cb), br.createFilter(cb)], [["content-type", "text/plain"], [
      "vary",
      "origin",
    ]]);
  };
  const a = run("gzip;q=0.5, br");
  assert.equal(a.headers.get("content-encoding"), "br");
  assert.deepEqual(new Uint8Array(zlib.brotliDecompressSync(a.body)), BODY);
  // Envoy matches the vary token exactly: a lowercase one does not count
  assert.equal(a.headers.get("vary"), "origin, Accept-Encoding");
  const b = run("br;q=0.1, gzip");
  assert.equal(b.headers.get("content-encoding"), "gzip");
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(b.body)), BODY);
  const c = ctx.stats.snapshot().counters;
  assert.equal(c["http.in.compressor.lib.brotli.header_compressor_used"], 1);
  assert.equal(c["http.in.compressor.lib.brotli.header_compressor_overshadowed"], 1);
  assert.equal(c["http.in.compressor.lib.gzip.header_compressor_used"], 1);
  assert.equal(c["http.in.compressor.lib.gzip.header_compressor_overshadowed"], 1);
  gz.close();
  br.close();
});

Deno.test("compressor filter: request direction and the responses that end with their headers", () => {
  const ctx = testContext();
  const f = factory(ctx, "gzip.compressor.v3.Gzip", { request_direction_config: {} });
  const cb = stream([["content-type", "text/plain"], ["content-length", String(BODY.length)]], "POST");
  const filter = f.createFilter(cb);
  filter.decodeHeaders!(false);
  assert.equal(cb.request.headers.get("content-encoding"), "gzip");
  assert.equal(cb.request.headers.get("content-length"), undefined);
  assert.equal(cb.request.contentLength, -1);
  const out = filter.decodeData!(BODY, true) as Uint8Array;
  assert.deepEqual(new Uint8Array(zlib.gunzipSync(out)), BODY);
  // HEAD and 304 answers carry no body: not compressed, still varied
  const head = f.createFilter(stream([["accept-encoding", "gzip"]], "HEAD"));
  const res = {
    status: 200,
    headers: HeaderMap.from([["content-type", "text/html"], ["content-length", "900"]]),
  };
  head.encodeHeaders!(res, false);
  assert.equal(res.headers.get("content-encoding"), undefined);
  assert.equal(res.headers.get("content-length"), "900");
  assert.equal(res.headers.get("vary"), "Accept-Encoding");
  const c = ctx.stats.snapshot().counters;
  assert.equal(c["http.in.compressor.lib.gzip.request.compressed"], 1);
  assert.equal(c["http.in.compressor.lib.gzip.request.total_uncompressed_bytes"], BODY.length);
  f.close();
});
