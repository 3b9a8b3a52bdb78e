/**
 * Helpers for the resilience fault test: origins run as separate processes (killed with SIGKILL, so
 * their connections drop mid-request, and restarted on the same port) and a paced keep-alive load
 * generator on raw HTTP/1.1 that records every response's status and `x-origin`.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();
const ORIGIN_SCRIPT = new URL("./resilience_origin.ts", import.meta.url).pathname;

/** An origin process that can be killed and restarted on the same port. */
export class OriginProcess implements AsyncDisposable {
  #child: Deno.ChildProcess | null = null;
  /** Listening port (fixed across restarts). */
  readonly port: number;
  /** Name the origin answers with (`x-origin`). */
  readonly name: string;
  #delayMs: number;

  /** Picks a free port; call `start()` to run the process. */
  constructor(name: string, delayMs = 0) {
    this.name = name;
    this.#delayMs = delayMs;
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (l.addr as Deno.NetAddr).port;
    l.close();
  }

  /** Spawns the origin and resolves once it accepts connections (bounded wait). */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.#child) throw new Error(`Origin ${this.name} already running`);
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", ORIGIN_SCRIPT, String(this.port), this.name, String(this.#delayMs)],
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    const deadline = Date.now() + timeoutMs;
    const exited = this.#child.status.then(() => true);
    for (;;) {
      try {
        const c = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
        c.close();
        return;
      } catch {
        // not listening yet
      }
      if (await Promise.race([exited, new Promise<false>((r) => setTimeout(() => r(false), 25))])) {
        this.#child = null;
        throw new Error(`Origin ${this.name} exited before listening on ${this.port}`);
      }
      if (Date.now() > deadline) throw new Error(`Origin ${this.name} did not listen on ${this.port}`);
    }
  }

  /** SIGKILLs the process: open connections are dropped by the kernel, nothing drains. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
  }

  /** Kills the process if it runs. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }
}

/** Counts of one load run. */
export interface LoadResult {
  /** Responses by status (0 = the connection failed before a full response). */
  statuses: Map<number, number>;
  /** Per phase (index set by `phase()` when the response arrived): responses by `x-origin`. */
  originsByPhase: Map<string, number>[];
  /** The first few failures, for the assertion message. */
  failures: string[];
  /** Wall time of the run in ms. */
  elapsedMs: number;
}

/** Options of `runLoad`. */
export interface LoadOptions {
  port: number;
  /** Keep-alive connections (each sends its requests one after another). */
  connections: number;
  /** Requests over all connections. */
  total: number;
  /** Minimum time between two requests of one connection (paces the run); 0 = as fast as possible. */
  intervalMs: number;
  /** Current phase index, read when a response completes. */
  phase: () => number;
  /** Called after each request is written, with the number written so far. */
  onIssued?: (issued: number) => void;
  path?: string;
}

interface Parsed {
  status: number;
  origin: string;
  /** Bytes consumed from the buffer. */
  used: number;
}

function findHeadEnd(buf: Uint8Array, len: number): number {
  for (let i = 3; i < len; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** Parses one complete response (content-length or chunked) at the start of `buf`; null if incomplete. */
function parseOne(buf: Uint8Array, len: number): Parsed | null {
  const headEnd = findHeadEnd(buf, len);
  if (headEnd < 0) return null;
  const lines = dec.decode(buf.subarray(0, headEnd - 4)).split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  let origin = "";
  let cl = 0;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const c = lines[i].indexOf(":");
    const k = lines[i].slice(0, c).trim().toLowerCase();
    const v = lines[i].slice(c + 1).trim();
    if (k === "content-length") cl = Number(v);
    else if (k === "x-origin") origin = v;
    else if (k === "transfer-encoding") chunked = v.toLowerCase().includes("chunked");
  }
  if (!chunked) return headEnd + cl <= len ? { status, origin, used: headEnd + cl } : null;
  let p = headEnd;
  for (;;) {
    let e = p;
    while (e + 1 < len && !(buf[e] === 13 && buf[e + 1] === 10)) e++;
    if (e + 1 >= len) return null;
    const size = parseInt(dec.decode(buf.subarray(p, e)), 16);
    p = e + 2 + size + 2;
    if (p > len) return null;
    if (size === 0) return { status, origin, used: p };
  }
}

/**
 * Runs `total` GETs over `connections` keep-alive connections to 127.0.0.1:`port`, paced by
 * `intervalMs` per connection; a connection that fails is counted (status 0) and reopened.
 */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const result: LoadResult = { statuses: new Map(), originsByPhase: [], failures: [], elapsedMs: 0 };
  const req = enc.encode(`GET ${o.path ?? "/load"} HTTP/1.1\r\nhost: svc.test\r\n\r\n`);
  let issued = 0;
  const start = Date.now();
  const record = (status: number, origin: string, why?: string) => {
    result.statuses.set(status, (result.statuses.get(status) ?? 0) + 1);
    const ph = o.phase();
    while (result.originsByPhase.length <= ph) result.originsByPhase.push(new Map());
    const m = result.originsByPhase[ph];
    m.set(origin, (m.get(origin) ?? 0) + 1);
    if (status !== 200 && result.failures.length < 10) result.failures.push(why ?? `status ${status}`);
  };
  // Connections are staggered over one interval so the load is smooth, not bursts of `connections`.
  const worker = async (_: unknown, k: number) => {
    const buf = new Uint8Array(64 * 1024);
    let conn: Deno.Conn | null = null;
    let len = 0;
    let mine = 0;
    try {
      while (issued < o.total) {
        issued++;
        const due = start + (mine + k / o.connections) * o.intervalMs;
        mine++;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        try {
          if (!conn) {
            conn = await Deno.connect({ hostname: "127.0.0.1", port: o.port });
            len = 0;
          }
          let off = 0;
          while (off < req.length) off += await conn.write(req.subarray(off));
          o.onIssued?.(issued);
          let parsed: Parsed | null = null;
          while (!(parsed = parseOne(buf, len))) {
            const n = await conn.read(buf.subarray(len));
            if (n === null) throw new Error("Connection closed before a full response");
            len += n;
          }
          buf.copyWithin(0, parsed.used, len);
          len -= parsed.used;
          record(parsed.status, parsed.origin);
        } catch (err) {
          record(0, "", (err as Error).message);
          conn?.close();
          conn = null;
        }
      }
    } finally {
      conn?.close();
    }
  };
  await Promise.all(Array.from({ length: o.connections }, worker));
  result.elapsedMs = Date.now() - start;
  return result;
}

/** A counter or gauge from the admin /stats text; 0 when absent. */
export function statOf(statsText: string, name: string): number {
  const prefix = `${name}: `;
  const line = statsText.split("\n").find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(prefix.length)) : 0;
}
