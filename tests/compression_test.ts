/**
 * Compression end to end: envoy.filters.http.compressor (gzip, brotli and zstd libraries, two compressor filters
 * choosing by q-value, per-route config, etags, sizes, content types, request compression) and
 * envoy.filters.http.decompressor (request and response bodies), with real peers: curl --compressed (libcurl's
 * gzip, brotli and zstd decoders), gzip -d and zstd -d over the raw bytes, and a raw socket client that times a
 * several-MB body streamed slowly by the origin.
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  anyHost,
  bootstrapYaml,
  concat,
  curl,
  httpListener,
  parseResponse,
  refusedPort,
  safeClose,
  sleep,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
  writeAll,
} from "./helpers.ts";
import { behaviors } from "./peers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};
const COMPRESSOR = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor";
const PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.CompressorPerRoute";
const LIB = "type.googleapis.com/envoy.extensions.compression";

/** A compressor filter entry named `name` with library `lib` ("gzip.compressor.v3.Gzip", ...). */
function compressor(name: string, libName: string, lib: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    typed_config: {
      "@type": COMPRESSOR,
      compressor_library: { name: libName, typed_config: { "@type": `${LIB}.${lib}` } },
      ...extra,
    },
  };
}

/** JSON text of about `n` bytes. */
function jsonBody(n: number): string {
  let s = "[";
  for (let i = 0; s.length < n; i++) s += `{"id":${i},"name":"item ${i % 53}","ok":true},`;
  return s + "{}]";
}

const JSON_BODY = jsonBody(20_000);
const STREAM_CHUNK = 128 * 1024;
const STREAM_CHUNKS = 24;

/** The i-th chunk of the slow stream (deterministic, compressible but not trivially). */
function streamChunk(i: number): Uint8Array {
  const b = new Uint8Array(STREAM_CHUNK);
  for (let j = 0; j < b.length; j++) b[j] = 97 + ((j * 7 + i * 13 + (j >> 9)) % 26);
  return b;
}

/** What a raw client got: the head and the body as it came off the wire (de-chunked). */
interface RawGet {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
  /** The trailer block of a chunked body ("" when none). */
  trailers: string;
}

/**
 * GET (or another method) over a fresh connection with `connection: close`; de-chunks the body. `onBody` runs
 * once, when the first body bytes arrive.
 */
async function rawGet(
  port: number,
  path: string,
  headers: string[] = [],
  method = "GET",
  onBody?: () => void,
): Promise<RawGet> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(
      conn,
      [`${method} ${path} HTTP/1.1`, "host: x", "connection: close", ...headers, "", ""].join("\r\n"),
    );
    const parts: Uint8Array[] = [];
    let headEnd = -1;
    let seen = 0;
    const buf = new Uint8Array(65536);
    const timer = setTimeout(() => safeClose(conn), 20_000);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        parts.push(buf.slice(0, n));
        seen += n;
        if (headEnd < 0) {
          const all = concat(parts);
          const i = dec.decode(all).indexOf("\r\n\r\n");
          if (i >= 0) headEnd = i + 4;
        }
        if (headEnd >= 0 && onBody && seen > headEnd + 16) {
          onBody();
          onBody = undefined;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    const all = concat(parts);
    const head = parseResponse(dec.decode(all.subarray(0, headEnd)));
    let body = all.subarray(headEnd);
    const trailers = { text: "" };
    if (head.headers.get("transfer-encoding") === "chunked") body = dechunk(body, trailers);
    return { status: head.status, headers: head.headers, body, trailers: trailers.text };
  } finally {
    safeClose(conn);
  }
}

/** The chunks of a chunked body joined; `trailers` gets the trailer block's text. */
function dechunk(b: Uint8Array, trailers?: { text: string }): Uint8Array {
  const out: Uint8Array[] = [];
  let off = 0;
  for (;;) {
    let eol = off;
    while (!(b[eol] === 13 && b[eol + 1] === 10)) eol++;
    const size = parseInt(dec.decode(b.subarray(off, eol)), 16);
    if (size === 0) {
      if (trailers) trailers.text = dec.decode(b.subarray(eol + 2));
      break;
    }
    out.push(b.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
  return concat(out);
}

/** Decodes with a real command-line tool (`gzip -dc`, `zstd -dc`) through a temp file. */
async function decodeWith(tool: string, data: Uint8Array): Promise<Uint8Array> {
  const f = await Deno.makeTempFile({ prefix: "nuncio_cz_" });
  try {
    await Deno.writeFile(f, data);
    const out = await new Deno.Command(tool, { args: ["-dc", f], stdout: "piped", stderr: "piped" }).output();
    assert.equal(out.code, 0, `${tool}: ${dec.decode(out.stderr)}`);
    return out.stdout;
  } finally {
    await Deno.remove(f);
  }
}

Deno.test("compression filters end to end", async (t) => {
  let streamDone = false;
  await using origin = startOrigin("web", (req, seen) => {
    const p = new URL(req.url).pathname;
    const json = { "content-type": "application/json" };
    switch (p) {
      case "/etag/strong":
        return new Response(JSON_BODY, { headers: { ...json, etag: '"v1"' } });
      case "/etag/weak":
        return new Response(JSON_BODY, { headers: { ...json, etag: 'W/"v1"' } });
      case "/small":
        return new Response('{"tiny":1}', { headers: json });
      case "/png":
        return new Response(JSON_BODY, { headers: { "content-type": "image/png" } });
      case "/text":
        return new Response(JSON_BODY, { headers: { "content-type": "text/plain; charset=utf-8" } });
      case "/already":
        return new Response(new Uint8Array(zlib.gzipSync(enc.encode(JSON_BODY))), {
          headers: { ...json, "content-encoding": "gzip" },
        });
      case "/no-transform":
        return new Response(JSON_BODY, { headers: { ...json, "cache-control": "public, no-transform" } });
      case "/vary":
        return new Response(JSON_BODY, { headers: { ...json, vary: "Origin" } });
      case "/partial":
        return new Response(JSON_BODY, { status: 206, headers: json });
      case "/empty":
        return new Response(null, { status: 204 });
      case "/echo":
        return new Response(`got ${seen.bodyBytes}`, { headers: json });
      case "/stream": {
        streamDone = false;
        let i = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (i === STREAM_CHUNKS) {
              streamDone = true;
              c.close();
              return;
            }
            if (i > 0) await sleep(15);
            c.enqueue(streamChunk(i++));
          },
        });
        return new Response(body, { headers: { "content-type": "text/html" } });
      }
      default:
        return new Response(JSON_BODY, { headers: json });
    }
  });
  // an origin keeping request bodies as bytes, and one answering with response trailers
  const uploads: { headers: Headers; body: Uint8Array }[] = [];
  await using bytesOrigin = startOrigin("bytes", async (req) => {
    uploads.push({ headers: req.headers, body: new Uint8Array(await req.arrayBuffer()) });
    return new Response("stored");
  }, { readBody: false });
  await using trailerOrigin = startRawOrigin(behaviors.answer(
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n" +
      `${JSON_BODY.length.toString(16)}\r\n${JSON_BODY}\r\n0\r\nx-checksum: abc\r\n\r\n`,
  ));
  await using grpcOrigin = startRawOrigin(behaviors.answer(
    "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n" +
      `${JSON_BODY.length.toString(16)}\r\n${JSON_BODY}\r\n0\r\ngrpc-status: 0\r\n\r\n`,
  ));
  await using proxy = await startProxy(bootstrapYaml(
    [
      // two compressor filters: the client's q-values pick one; per-route configs by filter name
      httpListener({
        name: "main",
        statPrefix: "main",
        virtualHosts: [anyHost([
          {
            match: { prefix: "/off" },
            route: { cluster: "web", prefix_rewrite: "/" },
            typed_per_filter_config: {
              gzip: { "@type": PER_ROUTE, disabled: true },
              brotli: { "@type": PER_ROUTE, disabled: true },
              zstd: { "@type": PER_ROUTE, disabled: true },
            },
          },
          {
            match: { prefix: "/strip" },
            route: { cluster: "web", prefix_rewrite: "/" },
            typed_per_filter_config: {
              gzip: {
                "@type": PER_ROUTE,
                overrides: { response_direction_config: { remove_accept_encoding_header: true } },
              },
            },
          },
          { match: { prefix: "/trailers" }, route: { cluster: "trailers" } },
          { match: { prefix: "/dead" }, route: { cluster: "dead" } },
          { match: { prefix: "/" }, route: { cluster: "web" } },
        ])],
        hcm: {
          http_filters: [
            compressor("gzip", "text", "gzip.compressor.v3.Gzip", { response_direction_config: {} }),
            compressor("brotli", "text", "brotli.compressor.v3.Brotli", { response_direction_config: {} }),
            compressor("zstd", "text", "zstd.compressor.v3.Zstd", { response_direction_config: {} }),
            ROUTER,
          ],
        },
      }),
      // the envoyproxy/examples gzip front: etags disable it, 100 bytes minimum, JSON only, no 206;
      // request bodies of text/plain are compressed toward the origin
      httpListener({
        name: "strict",
        statPrefix: "strict",
        virtualHosts: [anyHost([
          { match: { prefix: "/upload" }, route: { cluster: "bytes" } },
          { match: { prefix: "/" }, route: { cluster: "web" } },
        ])],
        hcm: {
          http_filters: [
            compressor("envoy.filters.http.compressor", "text_optimized", "gzip.compressor.v3.Gzip", {
              response_direction_config: {
                common_config: { min_content_length: 100, content_type: ["application/json"] },
                disable_on_etag_header: true,
                uncompressible_response_codes: [206],
              },
              request_direction_config: { common_config: { content_type: ["text/plain"] } },
            }),
            ROUTER,
          ],
        },
      }),
      // the decompressor in both directions
      httpListener({
        name: "inflate",
        statPrefix: "inflate",
        virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])],
        hcm: {
          http_filters: [{
            name: "envoy.filters.http.decompressor",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.decompressor.v3.Decompressor",
              decompressor_library: {
                name: "upload",
                typed_config: { "@type": `${LIB}.gzip.decompressor.v3.Gzip` },
              },
            },
          }, ROUTER],
        },
      }),
      // a filter further from the client holds the whole response (grpc_http1_bridge): the compressor nearer
      // the client still compresses it, and the head announces the compressed length
      httpListener({
        name: "held",
        statPrefix: "held",
        virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "grpc" } }])],
        hcm: {
          http_filters: [
            compressor("envoy.filters.http.compressor", "grpc", "gzip.compressor.v3.Gzip", {
              response_direction_config: { common_config: { content_type: ["application/grpc"] } },
            }),
            {
              name: "envoy.filters.http.grpc_http1_bridge",
              typed_config: {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_http1_bridge.v3.Config",
              },
            },
            ROUTER,
          ],
        },
      }),
    ],
    [
      staticCluster("web", [origin.port]),
      staticCluster("bytes", [bytesOrigin.port]),
      staticCluster("trailers", [trailerOrigin.port]),
      staticCluster("grpc", [grpcOrigin.port]),
      staticCluster("dead", [refusedPort()]),
    ],
  ));
  const main = proxy.port("main");
  const gz = "http.main.compressor.text.gzip.";

  await t.step("curl --compressed gets gzip (first of its accept-encoding), vary, chunked", async () => {
    const r = await curl(["-s", "-D", "-", "--compressed", proxy.url("/json", "main")]);
    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.equal(res.body, JSON_BODY);
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.equal(res.headers.get("vary"), "Accept-Encoding");
    assert.equal(res.headers.get("transfer-encoding"), "chunked");
    assert.equal(res.headers.get("content-length"), undefined);
    assert.equal(proxy.stat(`${gz}response.compressed`), 1);
    assert.equal(proxy.stat(`${gz}header_compressor_used`), 1);
    assert.equal(proxy.stat("http.main.compressor.text.brotli.header_compressor_overshadowed"), 1);
    assert.equal(proxy.stat(`${gz}response.total_uncompressed_bytes`), JSON_BODY.length);
    assert.ok(proxy.stat(`${gz}response.total_compressed_bytes`) < JSON_BODY.length / 4);
  });

  await t.step("raw bytes decode with gzip -d, zstd -d and node:zlib; br through libcurl", async () => {
    const g = await rawGet(main, "/json", ["accept-encoding: gzip"]);
    assert.equal(g.headers.get("content-encoding"), "gzip");
    assert.equal(dec.decode(await decodeWith("gzip", g.body)), JSON_BODY);
    const z = await rawGet(main, "/json", ["accept-encoding: zstd"]);
    assert.equal(z.headers.get("content-encoding"), "zstd");
    assert.equal(dec.decode(await decodeWith("zstd", z.body)), JSON_BODY);
    const b = await rawGet(main, "/json", ["accept-encoding: br"]);
    assert.equal(b.headers.get("content-encoding"), "br");
    assert.equal(dec.decode(zlib.brotliDecompressSync(b.body)), JSON_BODY);
    const viaCurl = await curl([
      "-s",
      "-D",
      "-",
      "--compressed",
      "-H",
      "accept-encoding: br",
      proxy.url("/json", "main"),
    ]);
    const res = parseResponse(viaCurl.stdout);
    assert.equal(res.headers.get("content-encoding"), "br");
    assert.equal(res.body, JSON_BODY);
  });

  await t.step("accept-encoding variants: q-values, identity, wildcard, no header", async () => {
    const cases: [string | null, string | undefined][] = [
      ["gzip;q=0.5, br;q=0.9", "br"],
      ["br;q=0.5, gzip", "gzip"],
      ["gzip, br", "gzip"],
      ["br, gzip", "br"],
      ["zstd;q=1, gzip;q=0.999", "zstd"],
      ["identity", undefined],
      ["gzip;q=0.2, identity", undefined],
      ["gzip, identity;q=0", "gzip"],
      ["*", "gzip"],
      ["*;q=0.5, gzip;q=0", "br"],
      ["gzip;q=0, br;q=0, zstd;q=0, *", undefined],
      ["deflate", undefined],
      [null, undefined],
    ];
    for (const [ae, want] of cases) {
      const r = await rawGet(main, "/json", ae === null ? [] : [`accept-encoding: ${ae}`]);
      assert.equal(r.headers.get("content-encoding"), want, `accept-encoding: ${ae}`);
      assert.equal(r.headers.get("vary"), "Accept-Encoding", `${ae}: vary on every compressible response`);
      if (want === undefined) assert.equal(dec.decode(r.body), JSON_BODY);
    }
    assert.ok(proxy.stat(`${gz}header_identity`) >= 2);
    assert.ok(proxy.stat(`${gz}header_wildcard`) >= 2);
    assert.ok(proxy.stat(`${gz}header_not_valid`) >= 2);
    assert.ok(proxy.stat(`${gz}no_accept_header`) >= 1);
  });

  await t.step("not compressed: small, other types, already encoded, no-transform, HEAD, 204", async () => {
    const ae = ["accept-encoding: gzip"];
    const small = await rawGet(main, "/small", ae);
    assert.equal(small.headers.get("content-encoding"), undefined);
    assert.equal(small.headers.get("content-length"), "10");
    assert.ok(proxy.stat(`${gz}response.content_length_too_small`) >= 1);
    const png = await rawGet(main, "/png", ae);
    assert.equal(png.headers.get("content-encoding"), undefined);
    assert.equal(png.headers.get("vary"), undefined);
    const already = await rawGet(main, "/already", ae);
    assert.equal(already.headers.get("content-encoding"), "gzip");
    assert.equal(dec.decode(zlib.gunzipSync(already.body)), JSON_BODY, "compressed once, not twice");
    const nt = await rawGet(main, "/no-transform", ae);
    assert.equal(nt.headers.get("content-encoding"), undefined);
    assert.equal(dec.decode(nt.body), JSON_BODY);
    const head = await rawGet(main, "/json", ae, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-encoding"), undefined);
    assert.equal(head.body.length, 0);
    const empty = await rawGet(main, "/empty", ae);
    assert.equal(empty.status, 204);
    assert.equal(empty.headers.get("content-encoding"), undefined);
    const vary = await rawGet(main, "/vary", ae);
    assert.equal(vary.headers.get("vary"), "Origin, Accept-Encoding");
    const text = await rawGet(main, "/text", ae);
    assert.equal(text.headers.get("content-encoding"), "gzip", "content-type parameters are ignored");
  });

  await t.step("etags: a strong one is dropped when compressing, a weak one kept", async () => {
    const strong = await rawGet(main, "/etag/strong", ["accept-encoding: gzip"]);
    assert.equal(strong.headers.get("content-encoding"), "gzip");
    assert.equal(strong.headers.get("etag"), undefined);
    const weak = await rawGet(main, "/etag/weak", ["accept-encoding: gzip"]);
    assert.equal(weak.headers.get("content-encoding"), "gzip");
    assert.equal(weak.headers.get("etag"), 'W/"v1"');
    const plain = await rawGet(main, "/etag/strong", ["accept-encoding: identity"]);
    assert.equal(plain.headers.get("etag"), '"v1"');
  });

  await t.step("per route: disabled, and remove_accept_encoding_header", async () => {
    const off = await rawGet(main, "/off/json", ["accept-encoding: gzip, br"]);
    assert.equal(off.headers.get("content-encoding"), undefined);
    assert.equal(off.headers.get("vary"), undefined);
    assert.equal(dec.decode(off.body), JSON_BODY);
    assert.equal(origin.requests.at(-1)!.headers.get("accept-encoding"), "gzip, br");
    const strip = await rawGet(main, "/strip/json", ["accept-encoding: gzip"]);
    assert.equal(strip.headers.get("content-encoding"), "gzip");
    assert.equal(origin.requests.at(-1)!.headers.get("accept-encoding"), null);
  });

  await t.step("local replies go through the compressor with their length dropped", async () => {
    const r = await rawGet(main, "/dead", ["accept-encoding: gzip"]);
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("content-encoding"), "gzip");
    assert.equal(r.headers.get("content-length"), undefined);
    assert.match(dec.decode(await decodeWith("gzip", r.body)), /^upstream connect error/);
    const viaCurl = await curl(["-s", "--compressed", proxy.url("/dead", "main")]);
    assert.match(viaCurl.stdout, /^upstream connect error/);
  });

  await t.step("HTTP/2 downstream: curl --http2-prior-knowledge --compressed", async () => {
    const r = await curl([
      "-s",
      "--http2-prior-knowledge",
      "--compressed",
      "-D",
      "-",
      proxy.url("/json", "main"),
    ]);
    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.equal(res.body, JSON_BODY);
  });

  await t.step(
    "a slow several-MB body is compressed as it streams: first bytes before the origin ends",
    async () => {
      const whole = concat(Array.from({ length: STREAM_CHUNKS }, (_, i) => streamChunk(i)));
      for (const [coding, tool] of [["gzip", "gzip"], ["zstd", "zstd"]]) {
        let doneAtFirstBytes: boolean | undefined;
        const r = await rawGet(main, "/stream", [`accept-encoding: ${coding}`], "GET", () => {
          doneAtFirstBytes = streamDone;
        });
        assert.equal(r.headers.get("content-encoding"), coding);
        // the origin takes >= 23 x 15 ms; compressed bytes came while it was still sending
        assert.equal(
          doneAtFirstBytes,
          false,
          `${coding}: the first bytes came only after the origin finished`,
        );
        assert.ok(streamDone);
        assert.deepEqual(await decodeWith(tool, r.body), whole, coding);
        assert.ok(r.body.length < whole.length / 2, `${coding}: ${r.body.length} compressed bytes`);
      }
    },
  );

  const strict = proxy.port("strict");
  const sp = "http.strict.compressor.text_optimized.gzip.";
  await t.step("the examples' front: etag, 100 byte minimum, JSON only, uncompressible 206", async () => {
    const ae = ["accept-encoding: gzip"];
    assert.equal((await rawGet(strict, "/json", ae)).headers.get("content-encoding"), "gzip");
    const etag = await rawGet(strict, "/etag/weak", ae);
    assert.equal(etag.headers.get("content-encoding"), undefined);
    assert.equal(etag.headers.get("vary"), undefined);
    assert.equal(proxy.stat(`${sp}not_compressed_etag`), 1);
    assert.equal((await rawGet(strict, "/text", ae)).headers.get("content-encoding"), undefined);
    assert.equal((await rawGet(strict, "/partial", ae)).headers.get("content-encoding"), undefined);
    assert.equal((await rawGet(strict, "/small", ae)).headers.get("content-encoding"), undefined);
    assert.equal(proxy.stat(`${sp}response.content_length_too_small`), 1);
    assert.equal(proxy.stat(`${sp}response.compressed`), 1);
    assert.equal(proxy.stat(`${sp}response.not_compressed`), 4);
  });

  await t.step("request direction: a text/plain upload reaches the origin gzip-compressed", async () => {
    const before = origin.requests.length;
    const text = jsonBody(5000);
    const r = await curl([
      "-s",
      "-H",
      "content-type: text/plain",
      "--data-binary",
      text,
      proxy.url("/echo", "strict"),
    ]);
    assert.match(r.stdout, /^got \d+$/);
    const seen = origin.requests[before];
    assert.equal(seen.headers.get("content-encoding"), "gzip");
    assert.equal(seen.headers.get("content-length"), null);
    assert.ok(seen.bodyBytes < text.length / 2, `${seen.bodyBytes} bytes upstream`);
    assert.equal(proxy.stat(`${sp}request.compressed`), 1);
    assert.equal(proxy.stat(`${sp}request.total_uncompressed_bytes`), text.length);
    // JSON uploads are not in its request content types
    await curl([
      "-s",
      "-H",
      "content-type: application/json",
      "--data-binary",
      text,
      proxy.url("/echo", "strict"),
    ]);
    assert.equal(origin.requests.at(-1)!.headers.get("content-encoding"), null);
  });

  await t.step(
    "request direction: the compressed upload decodes with gzip -d, with trailers too",
    async () => {
      const text = jsonBody(70_000);
      await curl([
        "-s",
        "-H",
        "content-type: text/plain",
        "--data-binary",
        text,
        proxy.url("/upload", "strict"),
      ]);
      assert.equal(uploads.at(-1)!.headers.get("content-encoding"), "gzip");
      assert.equal(dec.decode(await decodeWith("gzip", uploads.at(-1)!.body)), text);
      // chunked with trailers: the compressed stream ends before them
      const half = text.length >> 1;
      const chunk = (x: string) => `${x.length.toString(16)}\r\n${x}\r\n`;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: strict });
      try {
        await writeAll(
          conn,
          "POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/plain\r\n" +
            "transfer-encoding: chunked\r\n\r\n" + chunk(text.slice(0, half)),
        );
        await sleep(20);
        await writeAll(conn, chunk(text.slice(half)) + "0\r\nx-sum: 1\r\n\r\n");
        const buf = new Uint8Array(4096);
        while ((await conn.read(buf)) !== null) { /* until the proxy closes */ }
      } finally {
        safeClose(conn);
      }
      assert.equal(dec.decode(await decodeWith("gzip", uploads.at(-1)!.body)), text);
    },
  );

  await t.step("response trailers: the compressed body is finished before them", async () => {
    const r = await rawGet(main, "/trailers", ["accept-encoding: gzip", "te: trailers"]);
    assert.equal(r.headers.get("content-encoding"), "gzip");
    assert.equal(dec.decode(await decodeWith("gzip", r.body)), JSON_BODY);
    assert.match(r.trailers, /^x-checksum: abc\r\n/);
  });

  await t.step(
    "a response held by a filter further upstream is compressed with its length known",
    async () => {
      const r = await rawGet(proxy.port("held"), "/svc/Call", [
        "content-type: application/grpc",
        "accept-encoding: gzip",
        "content-length: 0",
      ], "POST");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("grpc-status"), "0");
      assert.equal(r.headers.get("content-encoding"), "gzip");
      assert.equal(r.headers.get("content-length"), String(r.body.length));
      assert.equal(dec.decode(await decodeWith("gzip", r.body)), JSON_BODY);
    },
  );

  const inflate = proxy.port("inflate");
  await t.step(
    "decompressor: a gzip upload reaches the origin decompressed; gzip responses too",
    async () => {
      const text = jsonBody(50_000);
      const gzFile = await Deno.makeTempFile({ prefix: "nuncio_cz_" });
      try {
        await Deno.writeFile(gzFile, zlib.gzipSync(enc.encode(text)));
        const before = origin.requests.length;
        const r = await curl([
          "-s",
          "-H",
          "content-encoding: gzip",
          "-H",
          "content-type: application/json",
          "--data-binary",
          `@${gzFile}`,
          proxy.url("/echo", "inflate"),
        ]);
        assert.equal(r.stdout, `got ${text.length}`);
        const seen = origin.requests[before];
        assert.equal(seen.body, text);
        assert.equal(seen.headers.get("content-encoding"), null);
        assert.equal(seen.headers.get("content-length"), null);
        assert.equal(
          seen.headers.get("accept-encoding"),
          "gzip",
          "response decompression is advertised upstream",
        );
      } finally {
        await Deno.remove(gzFile);
      }
      const res = await rawGet(inflate, "/already", ["accept-encoding: br"]);
      assert.equal(res.headers.get("content-encoding"), undefined);
      assert.equal(dec.decode(res.body), JSON_BODY);
      assert.equal(origin.requests.at(-1)!.headers.get("accept-encoding"), "br,gzip");
      const ds = "http.inflate.decompressor.upload.gzip.";
      assert.equal(proxy.stat(`${ds}request.decompressed`), 1);
      assert.equal(proxy.stat(`${ds}request.total_uncompressed_bytes`), text.length);
      assert.equal(proxy.stat(`${ds}response.decompressed`), 1);
      assert.equal(proxy.stat(`${ds}response.not_decompressed`), 1);
      const bad = await rawExchangeBody(inflate, "/echo", enc.encode("definitely not gzip"));
      assert.equal(bad, "got 0");
      assert.equal(proxy.stat(`${ds}decompressor_library.zlib_data_error`), 1);
    },
  );
});

/** POSTs `body` with content-encoding: gzip over a raw socket; returns the response body text. */
async function rawExchangeBody(port: number, path: string, body: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(
      conn,
      `POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-encoding: gzip\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    await writeAll(conn, body);
    const parts: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
    const text = dec.decode(concat(parts));
    const res = parseResponse(text);
    return res.headers.get("transfer-encoding") === "chunked"
      ? dec.decode(dechunk(enc.encode(res.body)))
      : res.body;
  } finally {
    safeClose(conn);
  }
}
