import assert from "node:assert/strict";
import { H1ParseError, type HeadScanState, type RequestHead } from "./types.ts";
import { h2PrefaceState, isH2Preface, parseRequestHead } from "./request.ts";

const LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };
const enc = new TextEncoder();

function parse(s: string, limits = LIMITS): RequestHead | null {
  const b = enc.encode(s);
  return parseRequestHead(b, 0, b.length, limits);
}

function parseOk(s: string): RequestHead {
  const h = parse(s);
  assert.ok(h, "expected a complete head");
  return h;
}

function rejects(s: string, status: number, details?: string, limits = LIMITS): void {
  assert.throws(() => parse(s, limits), (e: unknown) => {
    assert.ok(e instanceof H1ParseError, `not an H1ParseError: ${e}`);
    assert.equal(e.status, status, `status for ${JSON.stringify(s)}: ${e.message}`);
    if (details) assert.equal(e.details, details);
    return true;
  });
}

const BROWSER = "GET /static/app.js?v=1 HTTP/1.1\r\nHost: www.example.com\r\n" +
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0\r\nAccept: */*\r\n" +
  "Accept-Encoding: gzip, deflate, br\r\nX-Custom-Thing:   padded value \t \r\nCookie: a=b; c=d\r\n\r\n";

Deno.test("parseRequestHead: valid requests", async (t) => {
  await t.step("typical browser request", () => {
    const h = parseOk(BROWSER);
    assert.equal(h.method, "GET");
    assert.equal(h.target, "/static/app.js?v=1");
    assert.equal(h.path, "/static/app.js?v=1");
    assert.equal(h.versionMinor, 1);
    assert.equal(h.host, "www.example.com");
    assert.equal(h.headEnd, enc.encode(BROWSER).length);
    assert.equal(h.contentLength, -1);
    assert.equal(h.chunked, false);
    assert.equal(h.keepAlive, true);
    assert.equal(h.upgrade, "");
    assert.equal(h.expectContinue, false);
    assert.deepEqual(h.headers.names, [
      "host",
      "user-agent",
      "accept",
      "accept-encoding",
      "x-custom-thing",
      "cookie",
    ]);
    assert.equal(h.headers.get("x-custom-thing"), "padded value");
    assert.equal(h.headers.get("accept-encoding"), "gzip, deflate, br");
  });
  await t.step("custom method and empty value", () => {
    const h = parseOk("PURGE /x HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Sp:   \r\n\r\n");
    assert.equal(h.method, "PURGE");
    assert.equal(h.headers.get("x-empty"), "");
    assert.equal(h.headers.get("x-sp"), "");
  });
  await t.step("mixed-case unknown header names are lowercased", () => {
    const h = parseOk("GET / HTTP/1.1\r\nHOST: a\r\nX-MiXeD_Name: v\r\n\r\n");
    assert.deepEqual(h.headers.names, ["host", "x-mixed_name"]);
    assert.equal(h.host, "a");
  });
  await t.step("HTTP/1.0 keep-alive rules", () => {
    assert.equal(parseOk("GET / HTTP/1.0\r\n\r\n").keepAlive, false);
    assert.equal(parseOk("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive, true);
    assert.equal(parseOk("GET / HTTP/1.0\r\n\r\n").versionMinor, 0);
    assert.equal(parseOk("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keepAlive, false);
    assert.equal(parseOk("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n").keepAlive, false);
  });
  await t.step("upgrade needs the connection token", () => {
    const h = parseOk("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n");
    assert.equal(h.upgrade, "websocket");
    assert.equal(parseOk("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade, "");
  });
  await t.step("expect 100-continue", () => {
    assert.equal(
      parseOk("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
        .expectContinue,
      true,
    );
    assert.equal(parseOk("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expectContinue, false);
  });
  await t.step("content-length and chunked", () => {
    const h = parseOk("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n");
    assert.equal(h.contentLength, 42);
    const c = parseOk("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert.equal(c.chunked, true);
    assert.equal(c.contentLength, -1);
  });
  await t.step("identical content-lengths are merged", () => {
    const h = parseOk("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
    assert.equal(h.contentLength, 5);
    assert.deepEqual(h.headers.getAll("content-length"), ["5"]);
    const l = parseOk("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5 ,5\r\n\r\n");
    assert.equal(l.contentLength, 5);
    assert.deepEqual(l.headers.getAll("content-length"), ["5"]);
  });
  await t.step("absolute-form target", () => {
    const h = parseOk("GET http://Example.com:8080/a/b?q=1 HTTP/1.1\r\n\r\n");
    assert.equal(h.absoluteHost, "Example.com:8080");
    assert.equal(h.absoluteScheme, "http");
    assert.equal(h.path, "/a/b?q=1");
    assert.equal(h.target, "http://Example.com:8080/a/b?q=1");
    assert.equal(parseOk("GET HTTPS://h HTTP/1.1\r\n\r\n").path, "/");
    assert.equal(parseOk("GET https://h?x=1 HTTP/1.1\r\n\r\n").path, "/?x=1");
    assert.equal(parseOk("GET https://h?x=1 HTTP/1.1\r\n\r\n").absoluteScheme, "https");
  });
  await t.step("authority-form for CONNECT, asterisk for OPTIONS", () => {
    const c = parseOk("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert.equal(c.absoluteHost, "example.com:443");
    assert.equal(c.path, "");
    assert.equal(parseOk("CONNECT example.com:443 HTTP/1.1\r\n\r\n").host, "");
    assert.equal(parseOk("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").path, "*");
  });
  await t.step("leading empty lines are ignored", () => {
    const h = parseOk("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.equal(h.method, "GET");
    assert.equal(h.headEnd, 4 + 27);
  });
  await t.step("obs-text bytes in values are kept as byte strings", () => {
    const b = new Uint8Array([
      ...enc.encode("GET / HTTP/1.1\r\nHost: a\r\nX-L: caf"),
      0xe9,
      ...enc.encode("\r\n\r\n"),
    ]);
    const h = parseRequestHead(b, 0, b.length, LIMITS)!;
    assert.equal(h.headers.get("x-l"), "caf\u00e9");
  });
  await t.step("tab inside a value is allowed", () => {
    assert.equal(parseOk("GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n").headers.get("x"), "a\tb");
  });
});

Deno.test("parseRequestHead: rejections", async (t) => {
  await t.step("request line", () => {
    rejects("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    rejects("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    rejects(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    rejects("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400);
    rejects("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400);
    rejects("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
    rejects("GET /\r\n\r\n", 400);
    rejects("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);
    rejects("GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url");
    rejects("GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url");
  });
  await t.step("targets", () => {
    rejects("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url");
    rejects("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    rejects("GET ftp://h/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_scheme");
    rejects("GET http:///x HTTP/1.1\r\n\r\n", 400, "http1.invalid_url");
    rejects("GET http://u@h/x HTTP/1.1\r\n\r\n", 400, "http1.invalid_url");
    rejects("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "http1.invalid_url");
  });
  await t.step("HTTP/2 preface is recognisable", () => {
    rejects("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "http1.h2_preface");
  });
  await t.step("header names", () => {
    rejects("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "http1.invalid_characters");
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX\tY: b\r\n\r\n", 400);
    rejects("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400, "http1.invalid_characters");
    rejects("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400);
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400, "http1.invalid_characters");
  });
  await t.step("header values", () => {
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400, "http1.invalid_characters");
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "http1.invalid_characters");
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n", 400, "http1.invalid_characters");
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400, "http1.invalid_characters");
  });
  await t.step("obs-fold and bare LF", () => {
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n  b\r\n\r\n", 400);
    rejects("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400);
    rejects("GET / HTTP/1.1\nHost: a\r\n\r\n", 400);
    rejects("GET / HTTP/1.1\r\nHost: a\n\n", 400);
    rejects("GET / HTTP/1.1\r\nHost: a\r\n\n", 400);
  });
  await t.step("bare LF is rejected even before the head is complete", () => {
    rejects("GET / HTTP/1.1\nHost", 400);
  });
  await t.step("framing", () => {
    rejects(
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
      "http1.content_length_and_chunked_not_allowed",
    );
    rejects(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      501,
      "http1.invalid_transfer_encoding",
    );
    rejects("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501);
    rejects(
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      501,
    );
    rejects("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "http1.invalid_transfer_encoding");
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400);
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400);
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,\r\n\r\n", 400);
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", 400);
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400);
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", 400);
    rejects("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400);
  });
  await t.step("host", () => {
    rejects("GET / HTTP/1.1\r\n\r\n", 400, "missing_host_header");
    rejects("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
    assert.ok(parse("GET / HTTP/1.0\r\n\r\n"));
  });
});

Deno.test("parseRequestHead: limits", async (t) => {
  const base = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"; // 27 bytes
  await t.step("byte limit at the boundary", () => {
    assert.ok(parse(base, { maxHeadersBytes: 27, maxHeadersCount: 10 }));
    rejects(base, 431, "http1.headers_too_large", { maxHeadersBytes: 26, maxHeadersCount: 10 });
  });
  await t.step("byte limit applies while incomplete", () => {
    const partial = "GET / HTTP/1.1\r\nHost: a\r\nX: " + "a".repeat(100);
    assert.equal(parse(partial, { maxHeadersBytes: 200, maxHeadersCount: 10 }), null);
    rejects(partial, 431, "http1.headers_too_large", { maxHeadersBytes: 100, maxHeadersCount: 10 });
  });
  await t.step("header count at the boundary", () => {
    const s = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    assert.ok(parse(s, { maxHeadersBytes: 1000, maxHeadersCount: 3 }));
    rejects(s, 431, "http1.too_many_headers", { maxHeadersBytes: 1000, maxHeadersCount: 2 });
  });
  await t.step("many headers grow the scratch table", () => {
    let s = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (let i = 0; i < 300; i++) s += `X-H${i}: v${i}\r\n`;
    const h = parse(s + "\r\n", { maxHeadersBytes: 1 << 20, maxHeadersCount: 1000 })!;
    assert.equal(h.headers.size, 301);
    assert.equal(h.headers.get("x-h299"), "v299");
  });
});

Deno.test("parseRequestHead: incremental and pipelined input", async (t) => {
  await t.step("byte by byte, with and without scan state", () => {
    const all = enc.encode(BROWSER + "tail");
    const total = all.length - 4;
    for (const useState of [false, true]) {
      const st: HeadScanState = { scanned: 0 };
      for (let end = 0; end < total; end++) {
        assert.equal(parseRequestHead(all, 0, end, LIMITS, useState ? st : undefined), null, `end=${end}`);
      }
      const h = parseRequestHead(all, 0, total, LIMITS, useState ? st : undefined)!;
      assert.equal(h.headEnd, total);
      assert.equal(h.headers.get("cookie"), "a=b; c=d");
      assert.equal(st.scanned, 0);
    }
  });
  await t.step("scan state is relative to start (buffer compaction)", () => {
    const st: HeadScanState = { scanned: 0 };
    const part = enc.encode("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n");
    const big = new Uint8Array(200);
    big.set(part, 50);
    assert.equal(parseRequestHead(big, 50, 50 + part.length, LIMITS, st), null);
    assert.ok(st.scanned > 0);
    const moved = new Uint8Array(200);
    moved.set(part, 0);
    moved.set(enc.encode("\r\n"), part.length);
    const h = parseRequestHead(moved, 0, part.length + 2, LIMITS, st)!;
    assert.equal(h.headers.get("x-a"), "b");
  });
  await t.step("pipelined requests in one buffer", () => {
    const body = "hello";
    const s = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n" + body +
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const b = enc.encode(s);
    const one = parseRequestHead(b, 0, b.length, LIMITS)!;
    assert.equal(one.path, "/a");
    const two = parseRequestHead(b, one.headEnd + one.contentLength, b.length, LIMITS)!;
    assert.equal(two.path, "/b");
    const three = parseRequestHead(b, two.headEnd, b.length, LIMITS)!;
    assert.equal(three.path, "/c");
    assert.equal(three.keepAlive, false);
    assert.equal(three.headEnd, b.length);
  });
  await t.step("works at a non-zero offset inside a larger buffer", () => {
    const b = new Uint8Array(100).fill(0x41);
    const req = enc.encode("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    b.set(req, 30);
    const h = parseRequestHead(b, 30, 30 + req.length, LIMITS)!;
    assert.equal(h.path, "/x");
    assert.equal(h.headEnd, 30 + req.length);
  });
});

Deno.test("HTTP/2 preface detection", () => {
  const p = enc.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nextra");
  assert.equal(isH2Preface(p, 0, p.length), true);
  assert.equal(isH2Preface(p, 0, 10), false);
  assert.equal(h2PrefaceState(p, 0, 10), -1);
  assert.equal(h2PrefaceState(p, 0, 24), 1);
  const g = enc.encode("GET / HTTP/1.1\r\n");
  assert.equal(h2PrefaceState(g, 0, g.length), 0);
  assert.equal(isH2Preface(g, 0, g.length), false);
});
