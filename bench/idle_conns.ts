/**
 * Child process for memory benchmarks: opens N keep-alive connections to 127.0.0.1:PORT, optionally
 * sends one GET on each and reads the whole response, prints one JSON line
 * `{"opened":N,"failed":M,"ms":T}` on stdout, then holds the connections until stdin reaches EOF.
 *
 * Usage: deno run --allow-net bench/idle_conns.ts --port P --count N [--mode connect|request]
 */

const args = parseArgs(Deno.args);
const encoder = new TextEncoder();
const request = encoder.encode(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${args.port}\r\n\r\n`);
const HEADER_END = [13, 10, 13, 10];

function parseArgs(argv: string[]): { port: number; count: number; mode: string; batch: number } {
  const get = (name: string, dflt?: string) => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? argv[i + 1] : dflt;
    if (v === undefined) throw new Error(`Missing --${name}`);
    return v;
  };
  const mode = get("mode", "request");
  if (mode !== "connect" && mode !== "request") throw new Error(`Bad --mode ${mode}`);
  return { port: Number(get("port")), count: Number(get("count")), mode, batch: Number(get("batch", "200")) };
}

function indexOfHeaderEnd(buf: Uint8Array, len: number): number {
  outer: for (let i = 0; i + 3 < len; i++) {
    for (let j = 0; j < 4; j++) if (buf[i + j] !== HEADER_END[j]) continue outer;
    return i + 4;
  }
  return -1;
}

/** Reads one response with a Content-Length body (or none); throws on EOF or a non-2xx status. */
async function readResponse(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(8192);
  let len = 0;
  let need = -1;
  while (len < buf.length) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) throw new Error("Connection closed before the response ended");
    len += n;
    if (need < 0) {
      const end = indexOfHeaderEnd(buf, len);
      if (end < 0) continue;
      const head = new TextDecoder().decode(buf.subarray(0, end));
      if (!/^HTTP\/1\.1 2\d\d/.test(head)) throw new Error(`Unexpected response: ${head.split("\r\n")[0]}`);
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      need = end + (cl ? Number(cl[1]) : 0);
    }
    if (len >= need) return;
  }
  throw new Error("Response too large");
}

async function open(): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: args.port });
  if (args.mode === "request") {
    try {
      await conn.write(request);
      await readResponse(conn);
    } catch (e) {
      conn.close();
      throw e;
    }
  }
  return conn;
}

const started = Date.now();
const conns: Deno.Conn[] = [];
let failed = 0;
let firstError = "";
for (let i = 0; i < args.count; i += args.batch) {
  const size = Math.min(args.batch, args.count - i);
  const results = await Promise.allSettled(Array.from({ length: size }, open));
  for (const r of results) {
    if (r.status === "fulfilled") conns.push(r.value);
    else {
      failed++;
      firstError ||= String(r.reason);
    }
  }
}
console.log(JSON.stringify({ opened: conns.length, failed, firstError, ms: Date.now() - started }));

// Hold until the parent closes our stdin (bounded by the parent's own timeout, which kills us).
const sink = new Uint8Array(64);
while ((await Deno.stdin.read(sink)) !== null) {
  // Ignore input; EOF is the signal.
}
for (const c of conns) {
  try {
    c.close();
  } catch {
    // Closed by the peer.
  }
}
