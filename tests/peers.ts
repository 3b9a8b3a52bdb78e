/**
 * Real peers for end-to-end tests: Deno.serve origins that record what they saw, raw TCP origins that
 * misbehave on cue, curl as a subprocess and a raw-socket client. Everything closes on `close()`.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A request as an origin saw it. */
export interface SeenRequest {
  method: string;
  /** Path with query, as received. */
  path: string;
  headers: Headers;
  /** Body bytes counted (the stored `body` keeps at most the first MiB). */
  bodyBytes: number;
  body: string;
  /** True when reading the body failed (the proxy reset the request). */
  bodyError?: boolean;
}

/** A running Deno.serve origin. */
export interface Origin extends AsyncDisposable {
  name: string;
  port: number;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** Answers a request after the body was read (the default answers 200 "hello from <name>"). */
export type OriginHandler = (req: Request, seen: SeenRequest) => Response | Promise<Response>;

/** Starts an HTTP origin on 127.0.0.1:0 that reads each body to the end, records it, then answers. */
export function startOrigin(
  name: string,
  handler?: OriginHandler,
  opts: { readBody?: boolean } = {},
): Origin {
  const requests: SeenRequest[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    const seen: SeenRequest = {
      method: req.method,
      path: u.pathname + u.search,
      headers: new Headers(req.headers),
      bodyBytes: 0,
      body: "",
    };
    requests.push(seen);
    if (req.body && opts.readBody !== false) {
      const parts: Uint8Array[] = [];
      let kept = 0;
      try {
        for await (const chunk of req.body) {
          seen.bodyBytes += chunk.length;
          if (kept < 1 << 20) {
            parts.push(chunk.slice());
            kept += chunk.length;
          }
        }
      } catch {
        seen.bodyError = true;
        return new Response(null, { status: 400 });
      }
      seen.body = dec.decode(concat(parts));
    }
    if (handler) return await handler(req, seen);
    return new Response(`hello from ${name}`, { headers: { "x-origin": name } });
  });
  const close = async () => {
    await server.shutdown();
    await server.finished;
  };
  return { name, port: server.addr.port, requests, close, [Symbol.asyncDispose]: close };
}

/** A raw TCP origin. */
export interface RawOrigin extends AsyncDisposable {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/** What a raw origin does with each accepted connection (it is closed afterwards). */
export type RawBehavior = (conn: Deno.Conn) => Promise<void>;

/** Starts a raw TCP origin on 127.0.0.1:0 running `behavior` per connection. */
export function startRawOrigin(behavior: RawBehavior): RawOrigin {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const state = { accepted: 0 };
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      state.accepted++;
      conns.add(conn);
      const t: Promise<void> = behavior(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        tasks.delete(t);
        safeClose(conn);
      });
      tasks.add(t);
    }
  })();
  const close = async () => {
    listener.close();
    await loop;
    for (const c of conns) safeClose(c);
    await Promise.all([...tasks]);
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get accepted() {
      return state.accepted;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reads until the end of a request head (or EOF); returns the head text. */
export async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(65536);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

/** Writes a whole string or byte array. */
export async function writeAll(conn: Deno.Conn, data: string | Uint8Array): Promise<void> {
  const b = typeof data === "string" ? enc.encode(data) : data;
  let off = 0;
  while (off < b.length) off += await conn.write(b.subarray(off));
}

/** Raw behaviours: answer a fixed response, stall, cut mid-head, echo bytes. */
export const behaviors = {
  /** Reads the head, writes `response` verbatim, then closes. */
  answer: (response: string): RawBehavior => async (conn) => {
    await readHead(conn);
    await writeAll(conn, response);
  },
  /** Reads the head, then waits until the peer closes (never answers). */
  stall: (): RawBehavior => async (conn) => {
    await readHead(conn);
    const buf = new Uint8Array(1024);
    while ((await conn.read(buf)) !== null) { /* drain */ }
  },
  /** Reads the head, writes part of a response head, then closes. */
  cutMidHead: (): RawBehavior => async (conn) => {
    await readHead(conn);
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Le");
  },
  /** Echoes every byte; half-closes its write side on EOF. */
  echo: (): RawBehavior => async (conn) => {
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      await writeAll(conn, buf.subarray(0, n));
    }
    await (conn as Deno.TcpConn).closeWrite();
  },
};

/** A port nothing listens on (bound, then released). */
export function refusedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * A free port below Linux's ephemeral range (32768-60999), for a server a test stops and starts again on the same
 * port: a port from the ephemeral range can meanwhile become the local port of one of the test's own client
 * connections, and the restart then fails with AddrInUse.
 */
export function restartablePort(): number {
  for (let i = 0; i < 1000; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // taken: another one
    }
  }
  throw new Error("no free port below the ephemeral range");
}

/** The outcome of a subprocess. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs curl with `args` (no shell); `-s` is implied. */
export async function curl(args: string[], stdin?: string): Promise<RunResult> {
  return await run("curl", ["-s", "--max-time", "20", ...args], stdin);
}

/** Runs a bash command line (for pipes such as `head -c 1G /dev/zero | curl -T -`). */
export async function bash(cmd: string): Promise<RunResult> {
  return await run("bash", ["-c", cmd]);
}

/** Runs a program, optionally feeding stdin, and collects its output. */
export async function run(
  cmd: string,
  args: string[],
  stdin?: string,
  env?: Record<string, string>,
): Promise<RunResult> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env,
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(enc.encode(stdin));
    await w.close();
  }
  const out = await p.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A parsed HTTP/1 response (the last one when several heads are present, e.g. after 100 Continue). */
export interface ParsedResponse {
  status: number;
  headers: Map<string, string>;
  /** Every header line in order, lowercase names. */
  headerList: [string, string][];
  body: string;
}

/** Parses `curl -i` output or raw response bytes. */
export function parseResponse(raw: string): ParsedResponse {
  let rest = raw;
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    const head = end < 0 ? rest : rest.slice(0, end);
    const lines = head.split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const body = end < 0 ? "" : rest.slice(end + 4);
    if (status >= 100 && status < 200 && status !== 101 && body.startsWith("HTTP/")) {
      rest = body;
      continue;
    }
    const headerList: [string, string][] = lines.slice(1).map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
    });
    return { status, headers: new Map(headerList), headerList, body };
  }
}

/** What a raw client got back. */
export interface RawResult {
  text: string;
  /** True when the server closed the connection (EOF or reset) before the timeout. */
  closed: boolean;
}

/**
 * Connects, writes each part (pausing `gapMs` between parts), then reads until the server closes or
 * `timeoutMs` passes. Write errors (the server closed first) are ignored; what was read is returned.
 */
export async function rawExchange(
  port: number,
  parts: (string | Uint8Array)[] | string,
  opts: { timeoutMs?: number; gapMs?: number; halfClose?: boolean } = {},
): Promise<RawResult> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    safeClose(conn);
  }, opts.timeoutMs ?? 2000);
  const chunks: Uint8Array[] = [];
  let closed = false;
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(buf.slice(0, n));
      }
      closed = !timedOut;
    } catch {
      closed = !timedOut;
    }
  })();
  try {
    for (const p of typeof parts === "string" ? [parts] : parts) {
      await writeAll(conn, p);
      if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
    }
    if (opts.halfClose) await (conn as Deno.TcpConn).closeWrite();
  } catch {
    // the server may close before it read everything
  }
  await reading;
  clearTimeout(timer);
  if (!timedOut) safeClose(conn);
  return { text: dec.decode(concat(chunks)), closed };
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Closes a connection, ignoring "already closed". */
export function safeClose(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
