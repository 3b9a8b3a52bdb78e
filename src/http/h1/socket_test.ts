import assert from "node:assert/strict";
import { HeaderMap } from "../headers.ts";
import { ChunkedDecoder } from "./chunked.ts";
import { encodeRequestHead, encodeResponse, frameChunk, LAST_CHUNK } from "./encode.ts";
import { parseRequestHead } from "./request.ts";
import { parseResponseHead } from "./response.ts";
import type { HeadScanState, RequestHead, ResponseHead } from "./types.ts";

const LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };
const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("codec over a real socket: chunked request in pieces, response back", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;

  const server = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(4096);
    let end = 0;
    const state: HeadScanState = { scanned: 0 };
    let head: RequestHead | null = null;
    while (head === null) {
      const n = await conn.read(buf.subarray(end));
      assert.ok(n !== null, "client closed early");
      end += n;
      head = parseRequestHead(buf, 0, end, LIMITS, state);
    }
    assert.equal(head.method, "POST");
    assert.equal(head.path, "/upload?x=1");
    assert.equal(head.host, "127.0.0.1");
    assert.equal(head.chunked, true);
    const decoder = new ChunkedDecoder(LIMITS);
    let pos = head.headEnd;
    let body = "";
    for (;;) {
      const r = decoder.next(buf, pos, end);
      pos = r.consumed;
      if (r.kind === "data") {
        body += dec.decode(buf.subarray(r.start, r.end));
        continue;
      }
      if (r.kind === "done") break;
      const n = await conn.read(buf.subarray(end));
      assert.ok(n !== null, "client closed mid-body");
      end += n;
    }
    const out = enc.encode(`got ${body}`);
    await conn.write(
      encodeResponse(
        200,
        HeaderMap.from([["content-length", String(out.length)], [
          "x-seen",
          head.headers.get("x-seen") ?? "",
        ]]),
        out,
      ),
    );
    conn.close();
  })();

  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  const reqHead = encodeRequestHead(
    "POST",
    "/upload?x=1",
    HeaderMap.from([["transfer-encoding", "chunked"], ["x-seen", "yes"]]),
    { authority: "127.0.0.1" },
  );
  // write the head in two pieces with a pause so the server sees an incomplete head first
  await client.write(reqHead.subarray(0, 20));
  await new Promise((r) => setTimeout(r, 20));
  await client.write(reqHead.subarray(20));
  await client.write(frameChunk(enc.encode("hello ")));
  await client.write(frameChunk(enc.encode("world")));
  await client.write(LAST_CHUNK);

  const rbuf = new Uint8Array(4096);
  let rend = 0;
  let resp: ResponseHead | null = null;
  while (resp === null || rend < resp.headEnd + resp.contentLength) {
    const n = await client.read(rbuf.subarray(rend));
    if (n === null) break;
    rend += n;
    resp ??= parseResponseHead(rbuf, 0, rend, LIMITS);
  }
  client.close();
  await server;
  listener.close();
  assert.ok(resp);
  assert.equal(resp.status, 200);
  assert.equal(resp.headers.get("x-seen"), "yes");
  assert.equal(dec.decode(rbuf.subarray(resp.headEnd, resp.headEnd + resp.contentLength)), "got hello world");
});
