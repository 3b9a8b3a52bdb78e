import assert from "node:assert/strict";
import http2 from "node:http2";
import type { HeaderMap } from "../http/headers.ts";
import { encodeGrpcFrame, GrpcFrameDecoder } from "./frame.ts";
import { GrpcError, GrpcServer, parseGrpcTimeout } from "./server.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Reply {
  http: number;
  status: number;
  message: string;
  /** grpc-status came in the response head (trailers-only). */
  trailersOnly: boolean;
  body?: string;
}

/** One call from node:http2 (an independent client); `chunks` are written as separate DATA frames. */
function call(
  port: number,
  path: string,
  chunks: Uint8Array[],
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const st = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    const r: Reply = { http: 0, status: -1, message: "", trailersOnly: false };
    const decoder = new GrpcFrameDecoder();
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) r.status = Number(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) r.message = decodeURIComponent(String(h["grpc-message"]));
    };
    st.on("response", (h) => {
      r.http = Number(h[":status"]);
      r.trailersOnly = h["grpc-status"] !== undefined;
      take(h);
    });
    st.on("trailers", take);
    st.on("data", (c: Uint8Array) => {
      for (const m of decoder.push(c)) r.body = dec.decode(m);
    });
    st.on("error", () => {});
    session.once("close", () => resolve(r));
    st.on("close", () => session.close());
    for (const c of chunks) st.write(c);
    st.end();
  });
}

const frame = (s: string) => encodeGrpcFrame(enc.encode(s));

Deno.test("gRPC server on the h2 codec", async (t) => {
  const server = new GrpcServer({ maxMessageBytes: 64 });
  const slow: { release: (() => void) | null } = { release: null };
  const releaseSlow = () => slow.release!();
  server
    .register(
      "/t.S/Echo",
      (req: Uint8Array, md: HeaderMap) => enc.encode(`${dec.decode(req)}|${md.get("x-k")}`),
    )
    .register("/t.S/Async", async (req) => {
      await new Promise((r) => setTimeout(r, 5));
      return req;
    })
    .register("/t.S/Fail", (req) => {
      const what = dec.decode(req);
      if (what === "grpc") throw new GrpcError(5, "Not here: ü 100%");
      if (what === "status") throw Object.assign(new Error("Busy"), { grpcStatus: 14 });
      throw new Error("Boom");
    })
    .register("/t.S/Reject", () => Promise.reject(new GrpcError(9, "Rejected")))
    .register("/t.S/Slow", () =>
      new Promise<Uint8Array>((r) => {
        slow.release = () => r(enc.encode("late"));
      }));
  const { port } = server.listen({ port: 0 });
  try {
    await t.step("unary calls, metadata, sync and async handlers, split frames", async () => {
      const r = await call(port, "/t.S/Echo", [frame("hi")], { "x-k": "v" });
      assert.deepEqual(r, { http: 200, status: 0, message: "", trailersOnly: false, body: "hi|v" });
      const a = await call(port, "/t.S/Async", [frame("x")]);
      assert.equal(a.status, 0);
      assert.equal(a.body, "x");
      const f = frame("split-message");
      const s = await call(port, "/t.S/Echo", [f.subarray(0, 2), f.subarray(2, 7), f.subarray(7)]);
      assert.equal(s.body, "split-message|undefined");
      const empty = await call(port, "/t.S/Echo", [encodeGrpcFrame(new Uint8Array(0))]);
      assert.equal(empty.body, "|undefined");
    });

    await t.step("handler errors become trailers-only statuses", async () => {
      const g = await call(port, "/t.S/Fail", [frame("grpc")]);
      assert.deepEqual(g, { http: 200, status: 5, message: "Not here: ü 100%", trailersOnly: true });
      assert.equal((await call(port, "/t.S/Fail", [frame("status")])).status, 14);
      const u = await call(port, "/t.S/Fail", [frame("other")]);
      assert.equal(u.status, 2);
      assert.equal(u.message, "Boom");
      assert.equal((await call(port, "/t.S/Reject", [frame("")])).status, 9);
    });

    await t.step("unknown method, content-type, HTTP method and encoding checks", async () => {
      const u = await call(port, "/t.S/Nope", [frame("")]);
      assert.equal(u.status, 12);
      assert.ok(u.trailersOnly);
      assert.match(u.message, /Method not found: \/t.S\/Nope/);
      const ct = await call(port, "/t.S/Echo", [frame("")], { "content-type": "application/json" });
      assert.equal(ct.http, 415);
      assert.equal(
        (await call(port, "/t.S/Echo", [frame("")], { "content-type": "application/grpc+proto" }))
          .status,
        0,
      );
      assert.equal((await call(port, "/t.S/Echo", [], { ":method": "PUT" })).http, 405);
      assert.equal((await call(port, "/t.S/Echo", [frame("")], { "grpc-encoding": "gzip" })).status, 12);
    });

    await t.step("framing errors and the message size bound", async () => {
      const big = await call(port, "/t.S/Echo", [frame("x".repeat(65))]);
      assert.equal(big.status, 8);
      assert.match(big.message, /65 bytes exceeds 64/);
      assert.equal((await call(port, "/t.S/Echo", [frame("x".repeat(64))])).status, 0);
      const compressed = frame("z");
      compressed[0] = 1;
      assert.equal((await call(port, "/t.S/Echo", [compressed])).status, 13);
      const two = await call(port, "/t.S/Echo", [frame("a"), frame("b")]);
      assert.equal(two.status, 13);
      assert.match(two.message, /More than one/);
      assert.match((await call(port, "/t.S/Echo", [])).message, /Missing request message/);
      assert.match((await call(port, "/t.S/Echo", [frame("abc").subarray(0, 6)])).message, /Missing/);
    });

    await t.step("grpc-timeout: DEADLINE_EXCEEDED, late replies dropped, malformed values", async () => {
      const t0 = performance.now();
      const r = await call(port, "/t.S/Slow", [frame("")], { "grpc-timeout": "50m" });
      const took = performance.now() - t0;
      assert.equal(r.status, 4);
      assert.ok(took >= 45 && took < 1000, `took ${took} ms`);
      releaseSlow();
      assert.equal((await call(port, "/t.S/Echo", [frame("")], { "grpc-timeout": "1S" })).status, 0);
      const bad = await call(port, "/t.S/Echo", [frame("")], { "grpc-timeout": "soon" });
      assert.equal(bad.status, 13);
      assert.match(bad.message, /Malformed grpc-timeout/);
    });

    await t.step("graceful shutdown lets the call in flight finish", async () => {
      slow.release = null;
      const inflight = call(port, "/t.S/Slow", [frame("")]);
      while (slow.release === null || server.connections === 0) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20));
      const done = server.shutdown(2000);
      await new Promise((r) => setTimeout(r, 30));
      releaseSlow();
      const r = await inflight;
      assert.equal(r.status, 0);
      assert.equal(r.body, "late");
      await done;
      assert.equal(server.connections, 0);
      await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
    });
  } finally {
    await server.close();
  }
});

Deno.test("parseGrpcTimeout", () => {
  assert.equal(parseGrpcTimeout("20m"), 20);
  assert.equal(parseGrpcTimeout("2S"), 2000);
  assert.equal(parseGrpcTimeout("1M"), 60_000);
  assert.equal(parseGrpcTimeout("1H"), 3_600_000);
  assert.equal(parseGrpcTimeout("1500u"), 1.5);
  assert.equal(parseGrpcTimeout("99999999n"), 99.999999);
  for (const bad of ["", "m", "123456789m", "1x", "-1m", "1.5S"]) {
    assert.equal(parseGrpcTimeout(bad), -1, bad);
  }
});
