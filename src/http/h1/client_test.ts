import assert from "node:assert/strict";
import {
  BodyEvent,
  BodyFraming,
  CLIENT_FIRST_BUF_SIZE,
  CLIENT_READ_BUF_SIZE,
  H1ClientCodec,
  H1ClosedError,
} from "./client.ts";
import { H1ParseError } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A Deno.Conn double answering reads from scripted pieces (then end of stream). */
function fakeConn(pieces: (string | Uint8Array)[]): Deno.Conn {
  const queue = pieces.map((p) => typeof p === "string" ? enc.encode(p) : p);
  let cur: Uint8Array | null = null;
  return {
    read(buf: Uint8Array): Promise<number | null> {
      if (cur === null || cur.length === 0) cur = queue.shift() ?? null;
      if (cur === null) return Promise.resolve(null);
      const n = Math.min(buf.length, cur.length);
      buf.set(cur.subarray(0, n));
      cur = cur.subarray(n);
      return Promise.resolve(n);
    },
  } as unknown as Deno.Conn;
}

/** Drives `codec` as the router does: head, then body events; returns status, body and trailers. */
async function exchange(codec: H1ClientCodec, method = "GET") {
  let head = codec.readHead(method);
  while (head === null) {
    if (!codec.received(await codec.read())) throw new Error("closed before head");
    head = codec.readHead(method);
  }
  let body = "";
  for (;;) {
    const ev = codec.nextBody();
    if (ev === BodyEvent.Data) body += dec.decode(codec.buf.subarray(codec.dataStart, codec.dataEnd));
    else if (ev === BodyEvent.Done) break;
    else if (!codec.received(await codec.read())) throw new Error("closed in body");
  }
  const out = { status: head.status, body, trailers: codec.trailers, reusable: codec.reusable };
  codec.endResponse();
  return out;
}

Deno.test("client codec: content-length body in pieces, keep-alive", async () => {
  const c = new H1ClientCodec(
    fakeConn(["HTTP/1.1 200 OK\r\nContent-Le", "ngth: 11\r\n\r\nhello", " wor", "ld"]),
  );
  const r = await exchange(c);
  assert.deepEqual([r.status, r.body, r.reusable], [200, "hello world", true]);
});

Deno.test("client codec: two responses on one connection, the second already buffered", async () => {
  const c = new H1ClientCodec(
    fakeConn(["HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naHTTP/1.1 204 No Content\r\n\r\n"]),
  );
  let head = c.readHead("GET");
  while (head === null) {
    c.received(await c.read());
    head = c.readHead("GET");
  }
  assert.equal(c.nextBody(), BodyEvent.Data);
  assert.equal(c.nextBody(), BodyEvent.Done);
  assert.equal(c.reusable, false, "bytes after the response: not reusable");
});

Deno.test("client codec: chunked body with trailers", async () => {
  const c = new H1ClientCodec(
    fakeConn([
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
      "lo\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\n",
    ]),
  );
  const r = await exchange(c);
  assert.equal(r.body, "hello world");
  assert.equal(r.trailers?.get("grpc-status"), "0");
  assert.equal(r.reusable, true);
});

Deno.test("client codec: close-delimited body ends at EOF and is not reusable", async () => {
  const c = new H1ClientCodec(fakeConn(["HTTP/1.1 200 OK\r\n\r\nabc", "def"]));
  const r = await exchange(c);
  assert.deepEqual([r.body, r.reusable], ["abcdef", false]);
  assert.equal(c.closed, true);
});

Deno.test("client codec: 1xx interim heads are absorbed, 101 is final", async () => {
  const c = new H1ClientCodec(
    fakeConn([
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n",
      "HTTP/1.1 200 OK\r\n" +
      "content-length: 2\r\n\r\nok",
    ]),
  );
  const r = await exchange(c);
  assert.deepEqual([r.status, r.body], [200, "ok"]);
  const u = new H1ClientCodec(
    fakeConn(["HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\nxyz"]),
  );
  const head = u.readHead("GET") ?? (u.received(await u.read()), u.readHead("GET"));
  assert.equal(head?.status, 101);
  assert.equal(u.framing, BodyFraming.Close);
});

Deno.test("client codec: HEAD, 204 and 304 have no body whatever they declare", async () => {
  for (
    const [method, raw] of [
      ["HEAD", "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n"],
      ["GET", "HTTP/1.1 204 No Content\r\n\r\n"],
      ["GET", "HTTP/1.1 304 Not Modified\r\ncontent-length: 42\r\n\r\n"],
    ]
  ) {
    const c = new H1ClientCodec(fakeConn([raw]));
    const r = await exchange(c, method);
    assert.equal(r.body, "");
    assert.equal(r.reusable, true, `${method} ${raw.slice(9, 12)}`);
  }
});

Deno.test("client codec: connection: close and HTTP/1.0 are not reusable", async () => {
  const a = await exchange(
    new H1ClientCodec(fakeConn(["HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"])),
  );
  assert.equal(a.reusable, false);
  const b = await exchange(new H1ClientCodec(fakeConn(["HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"])));
  assert.equal(b.reusable, false);
});

Deno.test("client codec: a close before the message ended is reported", async () => {
  const c = new H1ClientCodec(fakeConn(["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"]));
  await assert.rejects(() => exchange(c), /closed in body/);
  const h = new H1ClientCodec(fakeConn(["HTTP/1.1 200 O"]));
  await assert.rejects(() => exchange(h), /closed before head/);
  await assert.rejects(() => new H1ClientCodec(fakeConn([])).readResponseHead("GET"), H1ClosedError);
});

Deno.test("client codec: malformed heads and chunking are H1ParseError 502", async () => {
  for (
    const raw of [
      "HTTX/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
      "HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ]
  ) {
    const c = new H1ClientCodec(fakeConn([raw]));
    await assert.rejects(
      () => exchange(c),
      (e: unknown) => e instanceof H1ParseError && e.status === 502,
      raw,
    );
  }
});

Deno.test("client codec: a head larger than the buffer grows it, up to Envoy's 60 KiB limit", async () => {
  const big = "x".repeat(20 * 1024);
  const c = new H1ClientCodec(fakeConn([`HTTP/1.1 200 OK\r\nx-big: ${big}\r\ncontent-length: 0\r\n\r\n`]));
  const r = await exchange(c);
  assert.equal(r.status, 200);
  assert.equal(c.buf.length, CLIENT_READ_BUF_SIZE, "back to the normal buffer after the response");
  const huge = "x".repeat(70 * 1024);
  const t = new H1ClientCodec(fakeConn([`HTTP/1.1 200 OK\r\nx-big: ${huge}\r\n\r\n`]));
  await assert.rejects(
    () => exchange(t),
    (e: unknown) => e instanceof H1ParseError && e.details === "http1.headers_too_large",
  );
  const many = Array.from({ length: 101 }, (_, i) => `x-${i}: 1\r\n`).join("");
  const m = new H1ClientCodec(fakeConn([`HTTP/1.1 200 OK\r\n${many}\r\n`]));
  await assert.rejects(() => exchange(m), H1ParseError);
});

Deno.test("client codec: no buffer before the first read; 4 KiB for small responses, doubled by reads that fill it", async () => {
  const small = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
  const idle = new H1ClientCodec(fakeConn([small]));
  assert.equal(idle.buf.length, 0, "a connection that never reads HTTP/1.1 (tcp_proxy) holds no buffer");
  const c = new H1ClientCodec(fakeConn([small, small]));
  await exchange(c);
  c.armIdleRead();
  await exchange(c);
  assert.equal(c.buf.length, CLIENT_FIRST_BUF_SIZE, "small responses keep the first buffer");
  // a 40 KB body: reads of 4, 8 and then 16 KiB (the cap), all bytes delivered in order
  const body = Array.from({ length: 40_000 }, (_, i) => String.fromCharCode(97 + i % 26)).join("");
  const big = new H1ClientCodec(
    fakeConn([`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`]),
  );
  const sizes: number[] = [];
  const read = big.read.bind(big);
  big.read = () => {
    const p = read();
    sizes.push(big.buf.length);
    return p;
  };
  const r = await exchange(big);
  assert.equal(r.body, body);
  assert.deepEqual([...new Set(sizes)], [CLIENT_FIRST_BUF_SIZE, 8192, CLIENT_READ_BUF_SIZE]);
  assert.equal(
    big.buf.length,
    CLIENT_READ_BUF_SIZE,
    "kept for the connection's next responses, never above the cap",
  );
});

Deno.test("client codec: the pending idle read is taken over by the next user", async () => {
  const c = new H1ClientCodec(fakeConn(["HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"]));
  const p = c.armIdleRead();
  assert.equal(c.pendingRead, p);
  const r = await exchange(c);
  assert.equal(c.pendingRead, null);
  assert.deepEqual([r.body, r.reusable], ["hi", true]);
});

Deno.test("client codec: slow path reads the head and skips the body", async () => {
  const c = new H1ClientCodec(
    fakeConn(["HTTP/1.1 503 Unavailable\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"]),
  );
  const head = await c.readResponseHead("GET");
  assert.equal(head.status, 503);
  assert.equal(await c.skipBody(), true);
  const l = new H1ClientCodec(fakeConn(["HTTP/1.1 200 OK\r\n\r\n", "a".repeat(100)]));
  await l.readResponseHead("GET");
  assert.equal(await l.skipBody(10), false, "stops past maxBytes, not reusable");
});
