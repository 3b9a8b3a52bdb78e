/**
 * Scripted origins that fail on cue, for retry, timeout, circuit breaker and mirror tests: each accepted
 * connection serves one request with the next step of a script (the last step repeats) and then closes.
 */
import { loadTlsRuntime } from "../src/transport/cert_store.ts";
import "../src/registry/builtin.ts";
import { SharedArena } from "../src/common/shared_arena.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigText } from "../src/config/load.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";
import { DataPlane } from "../src/server/data_plane.ts";
import { parseResponse, rawExchange, writeAll } from "./peers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What the origin does with one request. */
export type Step =
  | { status: number; body?: string; headers?: Record<string, string>; delayMs?: number }
  | { reset: "before_head" | "mid_body" }
  | { stall: true };

/** A request as the scripted origin saw it. */
export interface ScriptedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A running scripted origin. */
export interface ScriptedOrigin extends AsyncDisposable {
  port: number;
  requests: ScriptedRequest[];
  /** Requests currently being served (not answered yet). */
  readonly inFlight: number;
  /** Lets every stalled request answer 200 "released" (tests of concurrency limits). */
  release(): void;
  close(): Promise<void>;
}

/** Reads one request (head and content-length or chunked body) from `conn`. */
async function readRequest(conn: Deno.Conn): Promise<ScriptedRequest | null> {
  const buf = new Uint8Array(1 << 20);
  let len = 0;
  let headEnd = -1;
  while (headEnd < 0) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) return null;
    len += n;
    headEnd = dec.decode(buf.subarray(0, len)).indexOf("\r\n\r\n");
  }
  const headText = dec.decode(buf.subarray(0, headEnd));
  const [first, ...lines] = headText.split("\r\n");
  const [method, path] = first.split(" ");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const bodyStart = enc.encode(headText).length + 4;
  let body = buf.slice(bodyStart, len);
  const cl = Number(headers["content-length"] ?? 0);
  const chunked = (headers["transfer-encoding"] ?? "").includes("chunked");
  const done = () => chunked ? dec.decode(body).includes("0\r\n\r\n") : body.length >= cl;
  while (!done()) {
    const n = await conn.read(buf);
    if (n === null) break;
    const next = new Uint8Array(body.length + n);
    next.set(body);
    next.set(buf.subarray(0, n), body.length);
    body = next;
  }
  let text = dec.decode(body);
  if (chunked) {
    let out = "";
    let rest = text;
    for (;;) {
      const i = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, i), 16);
      if (!size) break;
      out += rest.slice(i + 2, i + 2 + size);
      rest = rest.slice(i + 2 + size + 2);
    }
    text = out;
  }
  return { method, path, headers, body: text };
}

/** Starts a scripted origin on 127.0.0.1:0. */
export function scriptedOrigin(script: Step[]): ScriptedOrigin {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: ScriptedRequest[] = [];
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const waiters: (() => void)[] = [];
  const state = { inFlight: 0, released: false };
  let next = 0;
  const serve = async (conn: Deno.Conn) => {
    const req = await readRequest(conn);
    if (!req) return;
    requests.push(req);
    const step = script[Math.min(next++, script.length - 1)];
    state.inFlight++;
    try {
      if ("stall" in step) {
        if (!state.released) await new Promise<void>((r) => waiters.push(r));
        await writeAll(conn, "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nreleased");
        return;
      }
      if ("reset" in step) {
        if (step.reset === "mid_body") {
          await writeAll(conn, "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
        }
        return;
      }
      if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs));
      const body = step.body ?? `status ${step.status}`;
      let head = `HTTP/1.1 ${step.status} X\r\ncontent-length: ${
        enc.encode(body).length
      }\r\nconnection: close\r\n`;
      for (const [k, v] of Object.entries(step.headers ?? {})) head += `${k}: ${v}\r\n`;
      await writeAll(conn, head + "\r\n" + body);
    } finally {
      state.inFlight--;
    }
  };
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      conns.add(conn);
      const t: Promise<void> = serve(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        tasks.delete(t);
        try {
          conn.close();
        } catch {
          // closed
        }
      });
      tasks.add(t);
    }
  })();
  const release = () => {
    state.released = true;
    for (const w of waiters.splice(0)) w();
  };
  const close = async () => {
    release();
    listener.close();
    await loop;
    await Promise.all([...tasks]);
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    get inFlight() {
      return state.inFlight;
    },
    release,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A response read by `request`. */
export interface SimpleResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** One HTTP/1.1 request (Connection: close) to 127.0.0.1:`port`; body sent with content-length. */
export async function request(
  port: number,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<SimpleResponse> {
  const method = init.method ?? (init.body !== undefined ? "POST" : "GET");
  const host = init.headers?.host === undefined ? "host: test.local\r\n" : "";
  let head = `${method} ${path} HTTP/1.1\r\n${host}connection: close\r\n`;
  for (const [k, v] of Object.entries(init.headers ?? {})) head += `${k}: ${v}\r\n`;
  if (init.body !== undefined) head += `content-length: ${enc.encode(init.body).length}\r\n`;
  const r = await rawExchange(port, head + "\r\n" + (init.body ?? ""), {
    timeoutMs: init.timeoutMs ?? 10000,
  });
  if (!r.text) return { status: 0, headers: new Map(), body: "" };
  const p = parseResponse(r.text);
  return { status: p.status, headers: p.headers, body: p.body };
}

/** Two (or more) data planes built from one bootstrap, attached to one SharedArena (as workers are). */
export interface SharedPlanes extends AsyncDisposable {
  planes: DataPlane[];
  /** Listener port of plane `i` (its first listener). */
  port(i: number): number;
  /** A stat summed over the planes (as the admin merge does). */
  stat(name: string): number;
}

/** Starts `n` data planes of `yaml` sharing one arena; `$LOG` becomes /dev/null. */
export async function startSharedPlanes(yaml: string, n: number): Promise<SharedPlanes> {
  const loaded = loadConfigText(yaml.replaceAll("$LOG", "/dev/null"), "test.yaml", {
    crossCheck: checkClusterReferences,
  });
  if (!loaded.ok) throw new Error(`Bad test config:\n${loaded.errors.map(formatConfigError).join("\n")}`);
  const arena = SharedArena.create({ bytes: 1 << 20, capacity: 1024 });
  const planes: DataPlane[] = [];
  for (let i = 0; i < n; i++) {
    await loadTlsRuntime();
    const p = new DataPlane(loaded.bootstrap, i, SharedArena.attach(arena.buffer));
    await p.start(false);
    planes.push(p);
  }
  const close = async () => {
    await Promise.all(planes.map((p) => p.stop()));
  };
  return {
    planes,
    port: (i) => planes[i].addresses()[0].port,
    stat: (name) =>
      planes.reduce((sum, p) => {
        const s = p.stats.snapshot();
        return sum + (s.counters[name] ?? s.gauges[name] ?? 0);
      }, 0),
    [Symbol.asyncDispose]: close,
  };
}
