import assert from "node:assert/strict";
import { H1ParseError, type HeadScanState, type ResponseHead } from "./types.ts";
import { parseResponseHead, responseBodyKind, responseHasNoBody } from "./response.ts";

const LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };
const enc = new TextEncoder();

function parse(s: string, limits = LIMITS): ResponseHead | null {
  const b = enc.encode(s);
  return parseResponseHead(b, 0, b.length, limits);
}

function ok(s: string): ResponseHead {
  const h = parse(s);
  assert.ok(h, "expected a complete head");
  return h;
}

function rejects(s: string, details?: string, limits = LIMITS): void {
  assert.throws(() => parse(s, limits), (e: unknown) => {
    assert.ok(e instanceof H1ParseError, `not an H1ParseError: ${e}`);
    assert.equal(e.status, 502);
    if (details) assert.equal(e.details, details);
    return true;
  });
}

Deno.test("parseResponseHead: valid responses", async (t) => {
  await t.step("typical response", () => {
    const s = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 32\r\n\r\n";
    const h = ok(s);
    assert.equal(h.status, 200);
    assert.equal(h.reason, "OK");
    assert.equal(h.versionMinor, 1);
    assert.equal(h.contentLength, 32);
    assert.equal(h.chunked, false);
    assert.equal(h.keepAlive, true);
    assert.equal(h.headEnd, s.length);
    assert.deepEqual(h.headers.names, ["server", "content-type", "content-length"]);
  });
  await t.step("tolerant forms: no reason, bare LF, CTL in value", () => {
    assert.equal(ok("HTTP/1.1 204\r\n\r\n").reason, "");
    assert.equal(ok("HTTP/1.1 404 \r\n\r\n").reason, "");
    const lf = ok("HTTP/1.1 200 OK\nX-A: b\n\n");
    assert.equal(lf.headers.get("x-a"), "b");
    assert.equal(lf.headEnd, 24);
    assert.equal(ok("HTTP/1.1 200 OK\r\nX-A: a\x01b\r\n\r\n").headers.get("x-a"), "a\x01b");
    assert.equal(ok("HTTP/1.1 200 Very Fine Indeed\r\n\r\n").reason, "Very Fine Indeed");
  });
  await t.step("connection semantics", () => {
    assert.equal(ok("HTTP/1.0 200 OK\r\n\r\n").keepAlive, false);
    assert.equal(ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keepAlive, true);
    assert.equal(ok("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").keepAlive, false);
    const up = ok("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n");
    assert.equal(up.upgrade, "websocket");
    assert.equal(ok("HTTP/1.1 200 OK\r\nUpgrade: h2\r\n\r\n").upgrade, "");
  });
  await t.step("chunked and merged content-length", () => {
    assert.equal(ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").chunked, true);
    const m = ok("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n");
    assert.deepEqual(m.headers.getAll("content-length"), ["7"]);
    assert.equal(ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n").contentLength, 100);
  });
  await t.step("incremental, with scan state", () => {
    const all = enc.encode("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nbody");
    const st: HeadScanState = { scanned: 0 };
    for (let end = 0; end < all.length - 4; end++) {
      assert.equal(parseResponseHead(all, 0, end, LIMITS, st), null);
    }
    const h = parseResponseHead(all, 0, all.length, LIMITS, st)!;
    assert.equal(h.headEnd, all.length - 4);
    assert.equal(h.headers.get("b"), "2");
  });
});

Deno.test("parseResponseHead: rejections are 502", async (t) => {
  await t.step("status line", () => {
    rejects("HTTP/2 200 OK\r\n\r\n");
    rejects("HTTP/1.1 20 OK\r\n\r\n");
    rejects("HTTP/1.1 099 OK\r\n\r\n");
    rejects("HTTP/1.1 2000 OK\r\n\r\n");
    rejects("ICY 200 OK\r\n\r\n");
    rejects("HTTP/1.1 200 O\0K\r\n\r\n");
  });
  await t.step("obs-fold and bad names", () => {
    rejects("HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n", "http1.codec_error");
    rejects("HTTP/1.1 200 OK\r\nX-A : a\r\n\r\n", "http1.invalid_characters");
    rejects("HTTP/1.1 200 OK\r\nX-A: a\0\r\n\r\n", "http1.invalid_characters");
  });
  await t.step("framing", () => {
    rejects(
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "http1.content_length_and_chunked_not_allowed",
    );
    rejects("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "http1.invalid_transfer_encoding");
    rejects("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    rejects("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n");
    rejects(
      "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
      "http1.transfer_encoding_not_allowed",
    );
    rejects("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "http1.content_length_not_allowed");
    assert.equal(ok("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").contentLength, 0);
  });
  await t.step("limits", () => {
    const s = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    assert.ok(parse(s, { maxHeadersBytes: s.length, maxHeadersCount: 2 }));
    rejects(s, "http1.headers_too_large", { maxHeadersBytes: s.length - 1, maxHeadersCount: 2 });
    rejects(s, "http1.too_many_headers", { maxHeadersBytes: 1000, maxHeadersCount: 1 });
  });
});

Deno.test("response body framing helpers", () => {
  assert.equal(responseHasNoBody(100, "GET"), true);
  assert.equal(responseHasNoBody(204, "GET"), true);
  assert.equal(responseHasNoBody(304, "GET"), true);
  assert.equal(responseHasNoBody(200, "HEAD"), true);
  assert.equal(responseHasNoBody(200, "GET"), false);
  assert.equal(responseBodyKind(ok("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), "GET"), "length");
  assert.equal(responseBodyKind(ok("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), "HEAD"), "none");
  assert.equal(
    responseBodyKind(ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET"),
    "chunked",
  );
  assert.equal(responseBodyKind(ok("HTTP/1.1 200 OK\r\n\r\n"), "GET"), "close");
  assert.equal(responseBodyKind(ok("HTTP/1.1 200 OK\r\n\r\n"), "CONNECT"), "none");
  assert.equal(responseBodyKind(ok("HTTP/1.1 304 Not Modified\r\n\r\n"), "GET"), "none");
});
