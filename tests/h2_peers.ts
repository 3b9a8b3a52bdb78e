/**
 * HTTP/2 peers for end-to-end tests: a node:http2 client that collects headers, body and trailers, and a raw
 * HTTP/2 socket that sends crafted (hostile) frame sequences and reports how the proxy ended the connection.
 */
import http2 from "node:http2";
import { FrameType } from "../src/http/h2/constants.ts";
import { readU32 } from "../src/http/h2/frame.ts";
import { FrameBuilder, goawayCode, parseFrames } from "../src/http/h2/testing.ts";

export { FrameBuilder };

/** What an HTTP/2 exchange returned. */
export interface H2Result {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
  trailers: Record<string, string | string[] | undefined>;
}

/** One request over a fresh node:http2 session (h2c); `body` chunks are written in order, then `trailers`. */
export async function h2Request(
  port: number,
  opts: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: Uint8Array[];
    trailers?: Record<string, string>;
  } = {},
): Promise<H2Result> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<H2Result>((resolve, reject) => {
      session.on("error", reject);
      const req = session.request(
        { ":method": opts.method ?? "GET", ":path": opts.path ?? "/", ...opts.headers },
        { endStream: !opts.body && !opts.trailers, waitForTrailers: opts.trailers !== undefined },
      );
      const chunks: Uint8Array[] = [];
      const out: H2Result = { status: 0, headers: {}, body: new Uint8Array(0), trailers: {} };
      req.on("response", (h) => {
        out.status = Number(h[":status"]);
        out.headers = h as H2Result["headers"];
      });
      req.on("data", (c: Uint8Array) => chunks.push(c));
      req.on("trailers", (t) => out.trailers = t as H2Result["trailers"]);
      req.on("wantTrailers", () => req.sendTrailers(opts.trailers!));
      req.on("error", reject);
      req.on("end", () => {
        let n = 0;
        for (const c of chunks) n += c.length;
        out.body = new Uint8Array(n);
        n = 0;
        for (const c of chunks) out.body.set(c, n), n += c.length;
        resolve(out);
      });
      if (opts.body) {
        for (const b of opts.body) req.write(b);
        if (!opts.trailers) req.end();
        else req.end();
      } else if (opts.trailers) req.end();
    });
  } finally {
    session.close();
    await new Promise((r) => session.once("close", r));
  }
}

/** A node:http2 session that records GOAWAY frames; requests made on it with `get`. */
export function h2Session(port: number) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const goaways: number[] = [];
  session.on("goaway", (code: number) => goaways.push(code));
  session.on("error", () => {});
  const closed = new Promise<void>((r) => session.once("close", () => r()));
  return {
    session,
    goaways,
    closed,
    get(path = "/"): Promise<number> {
      return new Promise((resolve, reject) => {
        const req = session.request({ ":path": path });
        let status = 0;
        req.on("response", (h) => status = Number(h[":status"]));
        req.on("data", () => {});
        req.on("end", () => resolve(status));
        req.on("error", reject);
      });
    },
    async close() {
      session.close();
      await closed;
    },
  };
}

/** How a raw connection ended: the GOAWAY code (-1 none), RST_STREAM count, bytes read and whether it closed. */
export interface AbuseOutcome {
  goaway: number;
  rsts: number;
  closed: boolean;
  bytes: number;
}

/** Sends `payload` on a raw h2c connection, then reads until the proxy closes or `waitMs` passes. */
export async function abuse(port: number, payload: Uint8Array, waitMs = 3000): Promise<AbuseOutcome> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const got: Uint8Array[] = [];
  let closed = false;
  const reader = (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        got.push(buf.slice(0, n));
      }
      closed = true;
    } catch {
      closed = true;
    }
  })();
  try {
    let off = 0;
    while (off < payload.length) off += await conn.write(payload.subarray(off, off + 65536));
  } catch { /* the proxy may close mid-write */ }
  let id: ReturnType<typeof setTimeout> | undefined;
  const timer = new Promise((r) => id = setTimeout(r, waitMs));
  await Promise.race([reader, timer]);
  clearTimeout(id);
  try {
    conn.close();
  } catch { /* closed */ }
  await reader;
  let n = 0;
  for (const g of got) n += g.length;
  const all = new Uint8Array(n);
  n = 0;
  for (const g of got) all.set(g, n), n += g.length;
  const frames = parseFrames(all);
  return {
    goaway: goawayCode(frames),
    rsts: frames.filter((f) => f.type === FrameType.RST_STREAM && readU32(f.payload, 0) !== 0).length,
    closed,
    bytes: all.length,
  };
}
