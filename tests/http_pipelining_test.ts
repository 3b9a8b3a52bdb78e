/**
 * HTTP/1.1 pipelining: requests sent back to back on one connection are answered in order, and a pipelined
 * request's body that arrives while an earlier response is still in flight (the connection is reading ahead
 * then) reaches the upstream intact, byte for byte.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  sleep,
  startOrigin,
  startProxy,
  staticCluster,
  writeAll,
} from "./helpers.ts";

/** Reads until `done(text)` holds, the peer closes or 3 s pass; returns the text. */
async function readUntil(c: Deno.Conn, done: (text: string) => boolean): Promise<string> {
  const buf = new Uint8Array(65536);
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<null>((r) => timer = setTimeout(() => r(null), 3000));
  try {
    while (!done(text)) {
      const n = await Promise.race([c.read(buf), expired]);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  return text;
}

Deno.test("HTTP/1.1 pipelining", async (t) => {
  await using origin = startOrigin("a", async (req, seen) => {
    if (new URL(req.url).pathname === "/slow") {
      await sleep(300);
      return new Response("slow");
    }
    return new Response(`${seen.bodyBytes}:${seen.body.slice(0, 5)}${seen.body.slice(-5)}`);
  });
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "c" } }])] })],
    [staticCluster("c", [origin.port])],
  ));

  for (const size of [10, 5000]) {
    await t.step(`a ${size}-byte body completed during the previous response arrives intact`, async () => {
      const c = await Deno.connect({ port: proxy.port() });
      try {
        const rest = "w".repeat(size - 10) + "world";
        await writeAll(
          c,
          `GET /slow HTTP/1.1\r\nhost: x\r\n\r\nPOST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: ${size}\r\n\r\nhello`,
        );
        await sleep(500); // /slow answered; the POST's body pump now waits on the read-ahead started before
        await writeAll(c, rest);
        const want = `${size}:helloworld`;
        const text = await readUntil(c, (s) => s.endsWith(want));
        assert.match(text, /^HTTP\/1\.1 200 [^]*slow/);
        assert.ok(text.endsWith(want), JSON.stringify(text.slice(-80)));
      } finally {
        c.close();
      }
    });
  }
});

Deno.test("HTTP/1.1 keep-alive heads larger than the idle read (512 bytes) arrive intact", async (t) => {
  await using origin = startOrigin("a", (req) => {
    const v = req.headers.get("x-big") ?? "";
    return new Response(`${new URL(req.url).pathname}:${v.length}:${v.slice(-6)}`);
  });
  await using proxy = await startProxy(bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "c" } }])] })],
    [staticCluster("c", [origin.port])],
  ));
  // a request whose x-big value is `n` bytes, ending in a tag the origin echoes back with the value's length
  const tag = (n: number) => `t${String(n).padStart(5, "0")}`;
  const head = (path: string, n: number) =>
    `GET ${path} HTTP/1.1\r\nhost: x\r\nx-big: ${"b".repeat(n - 6)}${tag(n)}\r\n\r\n`;
  const want = (path: string, n: number) => `${path}:${n}:${tag(n)}`;

  await t.step(
    "one connection: header values of 3000, 600, 100 and 470 bytes, one after the other",
    async () => {
      const c = await Deno.connect({ port: proxy.port() });
      try {
        for (const [i, n] of [3000, 600, 100, 470].entries()) {
          await writeAll(c, head(`/r${i}`, n));
          const text = await readUntil(c, (s) => s.endsWith(want(`/r${i}`, n)));
          assert.ok(text.endsWith(want(`/r${i}`, n)), JSON.stringify(text.slice(-80)));
          await sleep(20); // the connection parks on its idle read between requests
        }
      } finally {
        c.close();
      }
    },
  );

  await t.step(
    "three pipelined heads (1.9 KB) in one write, then a head trickled a byte at a time",
    async () => {
      const c = await Deno.connect({ port: proxy.port() });
      try {
        await writeAll(c, head("/p0", 700) + head("/p1", 500) + head("/p2", 700));
        const all = await readUntil(c, (s) => s.endsWith(want("/p2", 700)));
        for (const [p, n] of [["/p0", 700], ["/p1", 500], ["/p2", 700]] as const) {
          assert.ok(all.includes(want(p, n)), `${p} in ${JSON.stringify(all.slice(-200))}`);
        }
        const slow = head("/t", 40);
        for (const ch of slow) await writeAll(c, ch);
        const text = await readUntil(c, (s) => s.endsWith(want("/t", 40)));
        assert.ok(text.endsWith(want("/t", 40)));
      } finally {
        c.close();
      }
    },
  );
});
