/**
 * End-to-end tests of the HTTP/2 codec over real sockets: a tiny server and client built on
 * src/http/h2, against curl --http2-prior-knowledge, nghttp, h2load, Deno.serve (h2c) and each other.
 */
import assert from "node:assert/strict";
import { HeaderMap } from "../src/http/headers.ts";
import {
  H2ClientConnection,
  type H2Head,
  H2ServerConnection,
  type H2Stream,
  type H2StreamHandler,
  newH2Stats,
  requestHead,
} from "../src/http/h2/mod.ts";
import { bash, curl, run } from "./peers.ts";

const enc = new TextEncoder();

/** Per-stream state of the test server's echo. */
interface EchoState {
  unconsumed: number;
  received: number;
  trailer: string;
}

/**
 * The test server: GET /hello -> "hello"; GET /bytes/<n> -> n bytes (flow-controlled); POST /echo streams
 * the body back (consuming request bytes only as the response side drains: end-to-end backpressure) and
 * answers trailers with trailers; POST /count replies with the byte count; /slow never answers.
 */
const serverHandler: H2StreamHandler = {
  onHeaders(st: H2Stream, head: H2Head, end: boolean) {
    const h = new HeaderMap();
    if (head.path === "/hello") {
      h.addLower("content-type", "text/plain");
      st.respond(200, h);
      st.sendData(enc.encode("hello"), true);
    } else if (head.path.startsWith("/bytes/")) {
      const n = Number(head.path.slice(7));
      st.respond(200, h);
      st.sendData(new Uint8Array(n).fill(0x61), true);
    } else if (head.path === "/echo" || head.path === "/count") {
      st.autoConsume = false;
      st.user = { unconsumed: 0, received: 0, trailer: "" } satisfies EchoState;
      if (head.path === "/echo") st.respond(200, h);
      if (end) this.onData(st, new Uint8Array(0), true);
    } else if (head.path !== "/slow") st.respond(404, h, true);
  },
  onData(st: H2Stream, data: Uint8Array, end: boolean) {
    const s = st.user as EchoState;
    s.received += data.length;
    const echo = st.headersSent;
    if (echo) {
      if (data.length > 0 && !st.sendData(data.slice())) s.unconsumed += data.length;
      else st.consume(data.length);
    } else st.consume(data.length);
    if (end) this.finish(st);
  },
  onTrailers(st: H2Stream, trailers: HeaderMap) {
    (st.user as EchoState).trailer = trailers.get("x-req-trailer") ?? "";
    this.finish(st);
  },
  onWritable(st: H2Stream) {
    const s = st.user as EchoState | undefined;
    if (s && s.unconsumed > 0) {
      st.consume(s.unconsumed);
      s.unconsumed = 0;
    }
  },
  onReset() {},
  finish(st: H2Stream) {
    const s = st.user as EchoState;
    if (!st.headersSent) {
      st.respond(200, new HeaderMap());
      st.sendData(enc.encode(String(s.received)), true);
      return;
    }
    const t = new HeaderMap();
    t.addLower("x-received", String(s.received));
    if (s.trailer) t.addLower("x-echo-trailer", s.trailer);
    st.sendTrailers(t);
  },
} as H2StreamHandler & { finish(st: H2Stream): void };

interface TestServer extends AsyncDisposable {
  port: number;
  stats: ReturnType<typeof newH2Stats>;
}

function startServer(): TestServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stats = newH2Stats();
  const conns = new Set<H2ServerConnection>();
  const loop = (async () => {
    for await (const c of listener) {
      c.setNoDelay(true);
      const h2 = new H2ServerConnection(c, serverHandler, { stats, max_concurrent_streams: 100 });
      conns.add(h2);
      h2.start().then(() => conns.delete(h2));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    stats,
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop.catch(() => {});
      const all = [...conns];
      for (const c of all) c.close();
      await Promise.all(all.map((c) => c.closed));
    },
  };
}

interface Reply {
  status: number;
  headers: HeaderMap;
  body: Uint8Array;
  trailers: HeaderMap | null;
}

/** Sends one request on `c` (waiting for a stream slot), uploading `body` with flow control. */
function exchange(
  c: H2ClientConnection,
  head: H2Head,
  body?: Uint8Array,
  trailers?: HeaderMap,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let status = 0;
    let headers = new HeaderMap();
    let off = 0;
    const done = (t: HeaderMap | null) => {
      let n = 0;
      for (const ch of chunks) n += ch.length;
      const out = new Uint8Array(n);
      n = 0;
      for (const ch of chunks) out.set(ch, n), n += ch.length;
      resolve({ status, headers, body: out, trailers: t });
    };
    const pushBody = (st: H2Stream) => {
      while (body && off < body.length) {
        const part = body.subarray(off, Math.min(body.length, off + 65536));
        off += part.length;
        const last = off === body.length && !trailers;
        if (!st.sendData(part, last)) return;
      }
      if (trailers) st.sendTrailers(trailers);
    };
    const handler: H2StreamHandler = {
      onHeaders(_st, h, end) {
        status = h.status;
        headers = h.headers;
        if (end) done(null);
      },
      onData(_st, d, end) {
        chunks.push(d.slice());
        if (end) done(null);
      },
      onTrailers: (_st, t) => done(t),
      onReset: (st, code) => reject(new Error(`Stream ${st.id} reset ${code}`)),
      onWritable: (st) => pushBody(st),
    };
    const open = () => {
      if (c.available() === 0) return void setTimeout(open, 1);
      const st = c.request(head, !body && !trailers, handler)!;
      if (body || trailers) pushBody(st);
    };
    open();
  });
}

async function connect(port: number): Promise<H2ClientConnection> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const c = new H2ClientConnection(conn, { stats: newH2Stats() });
  void c.start();
  return c;
}

function sum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s = (s * 31 + b[i]) >>> 0;
  return s;
}

Deno.test("h2 codec against real peers", async (t) => {
  await using srv = startServer();
  const base = `http://127.0.0.1:${srv.port}`;
  const tmp = await Deno.makeTempDir();
  try {
    const big = crypto.getRandomValues(new Uint8Array(65536));
    const upload = new Uint8Array(6 * 1024 * 1024);
    for (let i = 0; i < upload.length; i += big.length) upload.set(big, i);
    await Deno.writeFile(`${tmp}/up.bin`, upload);

    await t.step("curl --http2-prior-knowledge: GET, 404, 8 MB download, 6 MB echo upload", async () => {
      const r = await curl(["--http2-prior-knowledge", "-i", `${base}/hello`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^HTTP\/2 200/);
      assert.match(r.stdout, /content-type: text\/plain/);
      assert.ok(r.stdout.endsWith("hello"));
      const nf = await curl([
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `${base}/nope`,
      ]);
      assert.equal(nf.stdout, "404");
      const dl = await curl([
        "--http2-prior-knowledge",
        "-o",
        `${tmp}/dl.bin`,
        "-w",
        "%{size_download}",
        `${base}/bytes/8388608`,
      ]);
      assert.equal(dl.stdout, "8388608");
      const up = await curl([
        "--http2-prior-knowledge",
        "--data-binary",
        `@${tmp}/up.bin`,
        "-o",
        `${tmp}/echo.bin`,
        `${base}/echo`,
      ]);
      assert.equal(up.code, 0, up.stderr);
      const echoed = await Deno.readFile(`${tmp}/echo.bin`);
      assert.equal(echoed.length, upload.length);
      assert.equal(sum(echoed), sum(upload));
    });

    await t.step("nghttp: request trailers echoed as response trailers", async () => {
      await Deno.writeFile(`${tmp}/small.bin`, upload.subarray(0, 100000));
      const r = await run("nghttp", [
        "-v",
        "-d",
        `${tmp}/small.bin`,
        "--trailer",
        "x-req-trailer: tv1",
        `${base}/echo`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /x-echo-trailer: tv1/);
      assert.match(r.stdout, /x-received: 100000/);
      const g = await run("nghttp", ["-n", "-s", `${base}/bytes/3000000`, `${base}/hello`]);
      assert.equal(g.code, 0, g.stderr);
    });

    await t.step("h2load -n 2000 -c 4 -m 10: all 2xx", async () => {
      const r = await run("h2load", ["-n", "2000", "-c", "4", "-m", "10", `${base}/hello`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed/);
      assert.match(r.stdout, /status codes: 2000 2xx/);
      const post = await run("h2load", [
        "-n",
        "400",
        "-c",
        "2",
        "-m",
        "20",
        "-d",
        `${tmp}/small.bin`,
        `${base}/count`,
      ]);
      assert.match(post.stdout, /400 succeeded, 0 failed/);
    });

    await t.step("own client against own server: 500 concurrent streams over one connection", async () => {
      const c = await connect(srv.port);
      const replies = await Promise.all(
        Array.from(
          { length: 500 },
          (_, i) => exchange(c, requestHead("GET", i % 2 ? "/hello" : "/bytes/20000", "t")),
        ),
      );
      for (const [i, r] of replies.entries()) {
        assert.equal(r.status, 200);
        assert.equal(r.body.length, i % 2 ? 5 : 20000);
      }
      c.close();
    });

    await t.step("own client: 6 MB upload and download with flow control, trailers both ways", async () => {
      const c = await connect(srv.port);
      const tr = new HeaderMap();
      tr.addLower("x-req-trailer", "abc");
      const [echo, dl, count] = await Promise.all([
        exchange(c, requestHead("POST", "/echo", "t"), upload, tr),
        exchange(c, requestHead("GET", "/bytes/7000000", "t")),
        exchange(c, requestHead("POST", "/count", "t"), upload),
      ]);
      assert.equal(echo.body.length, upload.length);
      assert.equal(sum(echo.body), sum(upload));
      assert.equal(echo.trailers?.get("x-echo-trailer"), "abc");
      assert.equal(echo.trailers?.get("x-received"), String(upload.length));
      assert.equal(dl.body.length, 7000000);
      assert.equal(new TextDecoder().decode(count.body), String(upload.length));
      c.close();
    });

    await t.step("own client against Deno.serve (h2c prior knowledge)", async () => {
      const ac = new AbortController();
      const ds = Deno.serve(
        { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} },
        async (req) => {
          const body = new Uint8Array(await req.arrayBuffer());
          return new Response(
            `${req.method} ${new URL(req.url).pathname} ${body.length} ${req.headers.get("x-a")}`,
            {
              headers: { "x-b": "2" },
            },
          );
        },
      );
      const c = await connect(ds.addr.port);
      const h = new HeaderMap();
      h.addLower("x-a", "1");
      const rs = await Promise.all([
        exchange(c, requestHead("GET", "/p", "x", h)),
        exchange(c, requestHead("POST", "/q", "x", h), upload.subarray(0, 3_000_000)),
      ]);
      assert.equal(new TextDecoder().decode(rs[0].body), "GET /p 0 1");
      assert.equal(new TextDecoder().decode(rs[1].body), "POST /q 3000000 1");
      assert.equal(rs[0].headers.get("x-b"), "2");
      c.close();
      ac.abort();
      await ds.finished;
    });

    await t.step(
      "hostile peer over a socket: rapid reset gets GOAWAY, other connections unaffected",
      async () => {
        const { FrameBuilder, parseFrames, goawayCode } = await import("../src/http/h2/testing.ts");
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
        const b = new FrameBuilder().preface().settings();
        for (let id = 1; id < 1400; id += 2) b.get(id, "/slow").rst(id, 8);
        await conn.write(b.take());
        const got: Uint8Array[] = [];
        const buf = new Uint8Array(65536);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          got.push(buf.slice(0, n));
        }
        conn.close();
        const all = new Uint8Array(got.reduce((n, x) => n + x.length, 0));
        got.reduce((o, x) => (all.set(x, o), o + x.length), 0);
        assert.equal(goawayCode(parseFrames(all)), 11);
        assert.ok(srv.stats.too_many_premature_resets.value >= 1);
        const ok = await curl(["--http2-prior-knowledge", `${base}/hello`]);
        assert.equal(ok.stdout, "hello");
      },
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  void bash;
});
