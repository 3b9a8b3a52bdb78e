/**
 * Request trailers larger than the 64 KiB body buffer (allowed when max_request_headers_kb is raised): they
 * are read up to the header limit and forwarded, past it the request fails, and in neither case does one
 * connection stall the others (the worker's single event loop keeps serving).
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  readHead,
  startProxy,
  startRawOrigin,
  staticCluster,
  writeAll,
} from "./helpers.ts";

async function get(port: number): Promise<string> {
  const c = await Deno.connect({ port });
  try {
    await writeAll(c, "GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    return await readHead(c);
  } finally {
    c.close();
  }
}

Deno.test("chunked request trailers past the body buffer", async (t) => {
  // a raw origin: reads one chunked request to its final empty line (trailers included), notes its size
  const seen: number[] = [];
  await using origin = startRawOrigin(async (conn) => {
    const buf = new Uint8Array(256 * 1024);
    let text = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      text += new TextDecoder().decode(buf.subarray(0, n));
      if (!text.includes("\r\n\r\n")) continue;
      const body = text.slice(text.indexOf("\r\n\r\n") + 4);
      if (text.startsWith("GET") || (body.includes("\r\n0\r\n") && body.endsWith("\r\n\r\n"))) {
        seen.push(text.length);
        await writeAll(conn, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        text = "";
      }
    }
  });
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "c" } }])],
      hcm: { max_request_headers_kb: 128 },
    })],
    [staticCluster("c", [origin.port])],
  ));
  const port = proxy.port();
  const head = "POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n";

  await t.step("a 70 KiB trailer block: others are served meanwhile, then it is forwarded", async () => {
    const c = await Deno.connect({ port });
    try {
      await writeAll(c, head + "x-big: " + "a".repeat(70 * 1024));
      assert.match(await get(port), /^HTTP\/1\.1 200/, "another client is served while the trailers arrive");
      await writeAll(c, "\r\n\r\n");
      assert.match(await readHead(c), /^HTTP\/1\.1 200/);
      assert.ok(seen.at(-1)! > 70 * 1024, "the trailers went upstream");
    } finally {
      c.close();
    }
  });

  await t.step("a trailer block past max_request_headers_kb fails the request", async () => {
    const c = await Deno.connect({ port });
    try {
      await writeAll(c, head + "x-big: " + "a".repeat(140 * 1024) + "\r\n\r\n").catch(() => {});
      assert.match(await readHead(c), /^HTTP\/1\.1 4(00|31)/);
      assert.match(await get(port), /^HTTP\/1\.1 200/);
    } finally {
      c.close();
    }
  });
});
