/**
 * Listener drain (shutdown with a grace period, and later hot restart and listener updates): in-flight
 * requests finish, clients are told to go away. HTTP/1.1: idle keep-alive connections close at once and the
 * response in flight carries `Connection: close`; HTTP/2: GOAWAY (NO_ERROR), the open stream completes.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  readHead,
  sleep,
  startOrigin,
  startProxy,
  startRawOrigin,
  staticCluster,
  tcpListener,
  writeAll,
} from "./helpers.ts";
import { h2Session } from "./h2_peers.ts";

function proxyYaml(port: number, hcm: Record<string, unknown> = {}): string {
  return bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "c" } }])], hcm })],
    [staticCluster("c", [port])],
  );
}

/** Resolves true when the peer closes `conn` within `ms`. */
async function closesWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(1024);
  let id: ReturnType<typeof setTimeout> | undefined;
  const timer = new Promise<"timeout">((r) => id = setTimeout(() => r("timeout"), ms));
  try {
    for (;;) {
      const r = await Promise.race([conn.read(buf).catch(() => null), timer]);
      if (r === "timeout") return false;
      if (r === null) return true;
    }
  } finally {
    clearTimeout(id);
  }
}

Deno.test("listener drain", async (t) => {
  await using origin = startOrigin("a", async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/slow") await sleep(400);
    if (path === "/stream") {
      // head now, body 300 ms later (chunked): the proxy forwards the head before the body exists
      let timer: ReturnType<typeof setTimeout> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("part1 "));
          timer = setTimeout(() => {
            c.enqueue(new TextEncoder().encode("part2"));
            c.close();
          }, 300);
        },
        cancel() {
          clearTimeout(timer);
        },
      });
      return new Response(body);
    }
    return new Response("done");
  });

  await t.step(
    "HTTP/1.1: idle connections close now, the response in flight says Connection: close",
    async () => {
      await using proxy = await startProxy(proxyYaml(origin.port));
      const port = proxy.port();
      const idle = await Deno.connect({ port });
      const busy = await Deno.connect({ port });
      try {
        await writeAll(idle, "GET /fast HTTP/1.1\r\nhost: x\r\n\r\n");
        assert.match(await readHead(idle), /^HTTP\/1\.1 200/);
        await writeAll(busy, "GET /slow HTTP/1.1\r\nhost: x\r\n\r\n");
        await sleep(100);
        const stopping = proxy.plane.stop(3000);
        const t0 = performance.now();
        assert.ok(await closesWithin(idle, 1000), "the idle keep-alive connection was closed");
        assert.ok(performance.now() - t0 < 300, "closed at once, not after the grace period");
        const head = await readHead(busy);
        assert.match(head, /^HTTP\/1\.1 200/);
        assert.match(head, /\r\nconnection: close\r\n/i);
        assert.ok(await closesWithin(busy, 1000), "closed after the response");
        await stopping;
        assert.equal(proxy.stat("http.ingress.downstream_cx_drain_close"), 2);
      } finally {
        idle.close();
        busy.close();
      }
    },
  );

  await t.step(
    "HTTP/1.1: a half-read head is still served; a response already streaming ends the connection",
    async () => {
      await using proxy = await startProxy(proxyYaml(origin.port));
      const port = proxy.port();
      const half = await Deno.connect({ port });
      const streaming = await Deno.connect({ port });
      try {
        await writeAll(streaming, "GET /stream HTTP/1.1\r\nhost: x\r\n\r\n");
        const head = await readHead(streaming); // the head went out before the drain: no Connection: close
        assert.match(head, /^HTTP\/1\.1 200/);
        assert.doesNotMatch(head, /connection: close/i);
        await writeAll(half, "GET /fast HTTP/1.1\r\nhost:");
        await sleep(50);
        const stopping = proxy.plane.stop(3000);
        await sleep(50);
        await writeAll(half, " x\r\n\r\n");
        const h = await readHead(half);
        assert.match(h, /^HTTP\/1\.1 200/);
        assert.match(h, /\r\nconnection: close\r\n/i);
        assert.ok(await closesWithin(streaming, 2000), "closed once the streamed response ended");
        await stopping;
      } finally {
        half.close();
        streaming.close();
      }
    },
  );

  for (const codec of ["HTTP2", "AUTO"]) {
    await t.step(`HTTP/2 (codec_type ${codec}): GOAWAY, and the open stream still completes`, async () => {
      await using proxy = await startProxy(proxyYaml(origin.port, { codec_type: codec }));
      const s = h2Session(proxy.port());
      try {
        assert.equal(await s.get("/fast"), 200);
        const slow = s.get("/slow");
        await sleep(100);
        const stopping = proxy.plane.stop(3000);
        assert.equal(await slow, 200);
        await s.closed;
        // graceful two-phase shutdown (RFC 9113 §6.8): GOAWAY(2^31-1), a PING round trip, GOAWAY(last id)
        assert.ok(s.goaways.length >= 1 && s.goaways.every((c) => c === 0), `GOAWAYs ${s.goaways}`);
        await stopping;
        assert.equal(proxy.stat("http.ingress.downstream_cx_drain_close"), 1);
      } finally {
        s.session.destroy();
      }
    });
  }

  await t.step(
    "tcp_proxy: an idle connection closes about a second into the drain, a busy one when it idles",
    async () => {
      await using echo = startRawOrigin(async (c) => {
        const buf = new Uint8Array(1024);
        for (;;) {
          const n = await c.read(buf);
          if (n === null) return;
          await writeAll(c, buf.subarray(0, n));
        }
      });
      await using proxy = await startProxy(
        bootstrapYaml([tcpListener("tcp", "echo")], [staticCluster("echo", [echo.port])]),
      );
      const port = proxy.port();
      const idle = await Deno.connect({ port });
      const busy = await Deno.connect({ port });
      const buf = new Uint8Array(64);
      let talking = true;
      let answered = 0;
      try {
        for (const c of [idle, busy]) {
          await writeAll(c, "hello");
          assert.equal(await c.read(buf), 5);
        }
        const t0 = performance.now();
        const stopping = proxy.plane.stop(10_000);
        // the busy one keeps talking for 2.5 s and is answered every time
        const talk = (async () => {
          while (talking) {
            await writeAll(busy, "ping");
            if (await busy.read(buf) !== 4) break;
            answered++;
            await sleep(200);
          }
        })();
        assert.ok(await closesWithin(idle, 3000), "the idle connection was closed");
        const idleClosed = performance.now() - t0;
        assert.ok(idleClosed >= 900 && idleClosed < 2500, `closed after ${idleClosed} ms`);
        await sleep(2500 - (performance.now() - t0));
        talking = false;
        await talk;
        assert.ok(answered >= 10, `busy answered ${answered} times`);
        assert.ok(await closesWithin(busy, 3000), "the busy connection closed once it idled");
        await stopping;
        assert.ok(performance.now() - t0 < 6000, "the drain ended well before its 10 s grace");
      } finally {
        idle.close();
        busy.close();
      }
    },
  );
});
