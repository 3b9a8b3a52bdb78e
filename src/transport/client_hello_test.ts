import assert from "node:assert/strict";
import { MAX_HELLO_BYTES, parseClientHello } from "./client_hello.ts";

/** Captures the first bytes a real TLS client sends (Deno's rustls client) to a plain TCP socket. */
async function captureHello(opts: { sni?: string; alpn?: string[] }): Promise<Uint8Array> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const client = Deno.connectTls({
    hostname: opts.sni ?? "127.0.0.1",
    port,
    alpnProtocols: opts.alpn,
  }).catch(() => null);
  const conn = await l.accept();
  const buf = new Uint8Array(MAX_HELLO_BYTES);
  let len = 0;
  while (parseClientHello(buf.subarray(0, len)).kind === "more") {
    const n = await conn.read(buf.subarray(len));
    if (n === null) break;
    len += n;
  }
  conn.close();
  l.close();
  (await client)?.close();
  return buf.slice(0, len);
}

/** The SNI/ALPN part of a result (tls13 and the session id are checked on their own). */
function strip(r: ReturnType<typeof parseClientHello>): unknown {
  if (r.kind !== "tls") return r;
  return { kind: r.kind, sni: r.sni, alpn: r.alpn };
}

Deno.test("parseClientHello", async (t) => {
  await t.step("reads SNI and ALPN from a real ClientHello", async () => {
    const hello = await captureHello({ sni: "localhost", alpn: ["h2", "http/1.1"] });
    assert.deepEqual(strip(parseClientHello(hello)), {
      kind: "tls",
      sni: "localhost",
      alpn: ["h2", "http/1.1"],
    });
    const r = parseClientHello(hello);
    assert.ok(r.kind === "tls" && r.tls13, "rustls offers TLS 1.3");
    // every strict prefix asks for more bytes
    for (const cut of [1, 5, 40, hello.length - 1]) {
      assert.equal(parseClientHello(hello.subarray(0, cut)).kind, "more");
    }
  });

  await t.step("no SNI for an IP address, no ALPN when none offered", async () => {
    const hello = await captureHello({});
    assert.deepEqual(strip(parseClientHello(hello)), { kind: "tls", sni: "", alpn: [] });
  });

  await t.step("a ClientHello split over two records is joined", async () => {
    const hello = await captureHello({ sni: "localhost", alpn: ["h2"] });
    const body = hello.subarray(5);
    const cut = 30;
    const rec = (b: Uint8Array) => new Uint8Array([0x16, 0x03, 0x01, b.length >> 8, b.length & 255, ...b]);
    const two = new Uint8Array([...rec(body.subarray(0, cut)), ...rec(body.subarray(cut))]);
    assert.deepEqual(strip(parseClientHello(two)), { kind: "tls", sni: "localhost", alpn: ["h2"] });
  });

  await t.step("plain text and garbage are raw", () => {
    const enc = new TextEncoder();
    assert.equal(parseClientHello(enc.encode("GET / HTTP/1.1\r\n")).kind, "raw");
    assert.equal(parseClientHello(new Uint8Array([0x16, 0x01])).kind, "raw");
    assert.equal(parseClientHello(new Uint8Array([0x16, 0x03, 0x01, 0, 4, 2, 0, 0, 0])).kind, "raw");
    assert.equal(parseClientHello(new Uint8Array()).kind, "more");
  });
});
