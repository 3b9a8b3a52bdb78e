import assert from "node:assert/strict";
import { HeaderMap } from "../headers.ts";
import {
  CHUNK_END,
  chunkHeader,
  concatBytes,
  encodeChunk,
  encodeHeadString,
  encodeLastChunk,
  encodeRequestHead,
  encodeResponse,
  encodeResponseHead,
  frameChunk,
  LAST_CHUNK,
} from "./encode.ts";
import { parseRequestHead } from "./request.ts";
import { parseResponseHead } from "./response.ts";
import { ChunkedDecoder } from "./chunked.ts";
import { reasonPhrase } from "./status_text.ts";
import { H1EncodeError, H1ParseError } from "./types.ts";

const dec = new TextDecoder();
const LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };

function text(b: Uint8Array): string {
  return dec.decode(b);
}

function encodeRejects(fn: () => unknown, details: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof H1EncodeError && e instanceof H1ParseError);
    assert.equal(e.status, 500);
    assert.equal(e.details, details);
    return true;
  });
}

Deno.test("encodeResponseHead", async (t) => {
  await t.step("status line, reason table, header order", () => {
    const h = HeaderMap.from([
      ["content-type", "text/plain"],
      ["content-length", "2"],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
    assert.equal(
      text(encodeResponseHead(200, h)),
      "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n\r\n",
    );
    assert.equal(text(encodeResponseHead(503, new HeaderMap())), "HTTP/1.1 503 Service Unavailable\r\n\r\n");
    assert.equal(
      text(encodeResponseHead(431, new HeaderMap(), 0)),
      "HTTP/1.0 431 Request Header Fields Too Large\r\n\r\n",
    );
    assert.equal(text(encodeResponseHead(299, new HeaderMap())), "HTTP/1.1 299 Unknown\r\n\r\n");
    assert.equal(reasonPhrase(307), "Temporary Redirect");
  });
  await t.step("round trip through the parser", () => {
    const h = HeaderMap.from([["server", "nuncio"], ["x-a", "b c"]]);
    const b = encodeResponseHead(404, h);
    const p = parseResponseHead(b, 0, b.length, LIMITS)!;
    assert.equal(p.status, 404);
    assert.equal(p.reason, "Not Found");
    assert.deepEqual([...p.headers], [...h]);
  });
  await t.step("rejects injection and bad input", () => {
    encodeRejects(
      () => encodeResponseHead(200, HeaderMap.from([["x", "a\r\nb: c"]])),
      "http1.invalid_header_value",
    );
    encodeRejects(
      () => encodeResponseHead(200, HeaderMap.from([["x", "a\nb"]])),
      "http1.invalid_header_value",
    );
    encodeRejects(
      () => encodeResponseHead(200, HeaderMap.from([["x", "a\0"]])),
      "http1.invalid_header_value",
    );
    encodeRejects(
      () => encodeResponseHead(200, HeaderMap.from([["bad name", "v"]])),
      "http1.invalid_header_name",
    );
    encodeRejects(() => encodeResponseHead(200, HeaderMap.from([["", "v"]])), "http1.invalid_header_name");
    encodeRejects(() => encodeResponseHead(200, HeaderMap.from([["x:y", "v"]])), "http1.invalid_header_name");
    encodeRejects(() => encodeResponseHead(99, new HeaderMap()), "http1.invalid_status");
    encodeRejects(() => encodeResponseHead(600, new HeaderMap()), "http1.invalid_status");
  });
  await t.step("byte strings stay byte exact; wider chars are UTF-8", () => {
    const latin = encodeResponseHead(200, HeaderMap.from([["x", "caf\u00e9"]]));
    assert.equal(latin[latin.length - 5], 0xe9);
    const wide = encodeHeadString("x: \u20ac");
    assert.deepEqual([...wide.subarray(3)], [0xe2, 0x82, 0xac]);
  });
});

Deno.test("encodeRequestHead", async (t) => {
  await t.step("host first, then headers", () => {
    const h = HeaderMap.from([["user-agent", "t"], ["content-length", "0"]]);
    const b = encodeRequestHead("POST", "/a?b=1", h, { authority: "svc:8080" });
    assert.equal(
      text(b),
      "POST /a?b=1 HTTP/1.1\r\nhost: svc:8080\r\nuser-agent: t\r\ncontent-length: 0\r\n\r\n",
    );
    const p = parseRequestHead(b, 0, b.length, LIMITS)!;
    assert.equal(p.host, "svc:8080");
    assert.equal(p.path, "/a?b=1");
    assert.equal(
      text(encodeRequestHead("GET", "/", new HeaderMap(), { versionMinor: 0 })),
      "GET / HTTP/1.0\r\n\r\n",
    );
  });
  await t.step("rejects bad method, path, authority", () => {
    encodeRejects(() => encodeRequestHead("G T", "/", new HeaderMap()), "http1.invalid_method");
    encodeRejects(() => encodeRequestHead("GET", "/a b", new HeaderMap()), "http1.invalid_url");
    encodeRejects(() => encodeRequestHead("GET", "/a\r\nX: y", new HeaderMap()), "http1.invalid_url");
    encodeRejects(() => encodeRequestHead("GET", "", new HeaderMap()), "http1.invalid_url");
    encodeRejects(
      () => encodeRequestHead("GET", "/", new HeaderMap(), { authority: "a\r\nb" }),
      "http1.invalid_header_value",
    );
  });
});

Deno.test("encoders: wide chars, latin-1 and large heads", () => {
  const wideReq = encodeRequestHead("GET", "/", HeaderMap.from([["x", "\u20ac"]]), { authority: "h" });
  assert.equal(text(wideReq), "GET / HTTP/1.1\r\nhost: h\r\nx: \u20ac\r\n\r\n");
  const latin = encodeRequestHead("GET", "/caf\u00e9", new HeaderMap());
  assert.equal(latin[8], 0xe9);
  const wideResp = encodeResponseHead(200, HeaderMap.from([["x", "\u20ac"]]));
  assert.equal(text(wideResp), "HTTP/1.1 200 OK\r\nx: \u20ac\r\n\r\n");
  const big = "v".repeat(40_000);
  const b = encodeResponseHead(200, HeaderMap.from([["x-big", big], ["x-after", "1"]]));
  const p = parseResponseHead(b, 0, b.length, LIMITS)!;
  assert.equal(p.headers.get("x-big"), big);
  assert.equal(p.headers.get("x-after"), "1");
  // the scratch buffer is reused: earlier results must not change
  const first = encodeResponseHead(201, new HeaderMap());
  encodeResponseHead(500, HeaderMap.from([["a", "b"]]));
  assert.equal(text(first), "HTTP/1.1 201 Created\r\n\r\n");
});

Deno.test("encodeResponse and concatBytes", () => {
  const body = new TextEncoder().encode("hi");
  const b = encodeResponse(200, HeaderMap.from([["content-length", "2"]]), body);
  assert.equal(text(b), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi");
  const wide = encodeResponse(200, HeaderMap.from([["x", "\u20ac"]]), body);
  assert.equal(text(wide), "HTTP/1.1 200 OK\r\nx: \u20ac\r\n\r\nhi");
  assert.equal(text(encodeResponse(204, new HeaderMap(), null)), "HTTP/1.1 204 No Content\r\n\r\n");
  assert.deepEqual([...concatBytes(new Uint8Array([1]), new Uint8Array(0), new Uint8Array([2, 3]))], [
    1,
    2,
    3,
  ]);
});

Deno.test("chunk framing", () => {
  assert.equal(text(chunkHeader(0x1a)), "1a\r\n");
  assert.equal(chunkHeader(100), chunkHeader(100));
  assert.equal(text(chunkHeader(1 << 20)), "100000\r\n");
  assert.equal(text(CHUNK_END), "\r\n");
  assert.equal(text(LAST_CHUNK), "0\r\n\r\n");
  const data = new TextEncoder().encode("hello");
  assert.equal(text(concatBytes(...encodeChunk(data))), "5\r\nhello\r\n");
  assert.deepEqual(encodeChunk(new Uint8Array(0)), []);
  assert.equal(frameChunk(new Uint8Array(0)).length, 0);
  const framed = concatBytes(frameChunk(data), encodeLastChunk(HeaderMap.from([["grpc-status", "0"]])));
  assert.equal(text(framed), "5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n");
  assert.equal(encodeLastChunk(null), LAST_CHUNK);
  // round trip through the decoder
  const d = new ChunkedDecoder(LIMITS);
  const r1 = d.next(framed, 0, framed.length);
  assert.equal(text(framed.subarray(r1.start, r1.end)), "hello");
  const r2 = d.next(framed, r1.consumed, framed.length);
  assert.equal(r2.kind, "done");
  assert.equal(r2.trailers?.get("grpc-status"), "0");
  assert.throws(() => encodeLastChunk(HeaderMap.from([["x", "a\r\n"]])), H1EncodeError);
});
