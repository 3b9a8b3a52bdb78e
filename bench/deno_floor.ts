/**
 * A reference point for `deno task bench`, not a product: about the least work an HTTP/1.1 reverse proxy
 * written for this runtime can do per request, on the same read/write ops nuncio uses (network/raw_io.ts).
 * Each client connection gets its own keep-alive upstream connection; a request head (no body) is parsed
 * into fields and written again with x-forwarded-proto added, the response head is parsed and written again
 * without its connection header (`connection: close` when the client asked for it, then the connection
 * ends), and its Content-Length body follows. No routing, pooling, timers, stats,
 * logs, filters or limits. Its req/s against nginx in the same run is the ceiling a Deno proxy reaches on the
 * machine, which is what nuncio's HTTP/1.1 ratio has to be read against.
 *
 * Usage: deno run --allow-net bench/deno_floor.ts <listen port> <origin port>
 */
import { connRead, connWrite } from "../src/network/raw_io.ts";

const CRLF2 = 0x0d0a0d0a;
const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** Index just past the first CRLFCRLF in buf[0, end), or -1. */
function headEnd(buf: Uint8Array, end: number): number {
  let w = 0;
  for (let i = 0; i < end; i++) {
    w = ((w << 8) | buf[i]) >>> 0;
    if (w === CRLF2) return i + 1;
  }
  return -1;
}

/** Splits a head into its start line and lower-cased field names with their values. */
function parseHead(text: string): { line: string; names: string[]; values: string[] } {
  const lines = text.split("\r\n");
  const names: string[] = [];
  const values: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    const colon = l.indexOf(":");
    if (colon <= 0) continue;
    names.push(l.slice(0, colon).toLowerCase());
    values.push(l.slice(colon + 1).trim());
  }
  return { line: lines[0], names, values };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await connWrite(conn, off === 0 ? data : data.subarray(off));
}

/** Reads into buf after `end` until a head is complete; returns [headEnd, end] or null at EOF. */
async function readHead(conn: Deno.Conn, buf: Uint8Array, end: number): Promise<[number, number] | null> {
  for (;;) {
    const e = headEnd(buf, end);
    if (e >= 0) return [e, end];
    if (end === buf.length) return null;
    const n = await connRead(conn, buf.subarray(end));
    if (!n) return null;
    end += n;
  }
}

async function serve(down: Deno.TcpConn, originPort: number): Promise<void> {
  down.setNoDelay(true);
  let up: Deno.TcpConn | null = null;
  const dbuf = new Uint8Array(16384);
  const ubuf = new Uint8Array(16384);
  let dend = 0;
  try {
    up = await Deno.connect({ hostname: "127.0.0.1", port: originPort });
    up.setNoDelay(true);
    for (;;) {
      const req = await readHead(down, dbuf, dend);
      if (req === null) break;
      const [reqEnd, got] = req;
      const r = parseHead(latin1.decode(dbuf.subarray(0, reqEnd - 4)));
      let out = r.line + "\r\n";
      let close = false;
      for (let i = 0; i < r.names.length; i++) {
        if (r.names[i] === "connection") {
          close = r.values[i].toLowerCase() === "close";
          continue;
        }
        out += r.names[i] + ": " + r.values[i] + "\r\n";
      }
      await writeAll(up, encoder.encode(out + "x-forwarded-proto: http\r\n\r\n"));
      dbuf.copyWithin(0, reqEnd, got);
      dend = got - reqEnd;
      const res = await readHead(up, ubuf, 0);
      if (res === null) break;
      const [resEnd, uend] = res;
      const h = parseHead(latin1.decode(ubuf.subarray(0, resEnd - 4)));
      let head = h.line + "\r\n";
      let length = 0;
      for (let i = 0; i < h.names.length; i++) {
        const name = h.names[i];
        if (name === "connection") continue;
        if (name === "content-length") length = Number(h.values[i]);
        head += name + ": " + h.values[i] + "\r\n";
      }
      const headBytes = encoder.encode(head + (close ? "connection: close\r\n\r\n" : "\r\n"));
      const total = headBytes.length + length;
      const out2 = new Uint8Array(total);
      out2.set(headBytes);
      let have = Math.min(uend - resEnd, length);
      out2.set(ubuf.subarray(resEnd, resEnd + have), headBytes.length);
      while (have < length) {
        const n = await connRead(up, out2.subarray(headBytes.length + have));
        if (!n) throw new Error("origin closed inside a body");
        have += n;
      }
      await writeAll(down, out2);
      if (close) break;
    }
  } catch {
    // a peer went away: close both
  }
  down.close();
  up?.close();
}

if (import.meta.main) {
  const [port, origin] = Deno.args.map(Number);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  for await (const c of listener) void serve(c, origin);
}
