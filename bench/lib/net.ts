/** Loopback networking helpers for benchmarks: free ports, waiting for a listener, a smoke GET. */

import { type Managed, tailFile } from "./proc.ts";

/** Returns a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function findFreePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Returns `count` distinct free ports. */
export function findFreePorts(count: number): number[] {
  const ports = new Set<number>();
  for (let i = 0; ports.size < count && i < count * 20; i++) ports.add(findFreePort());
  if (ports.size < count) throw new Error(`Could not find ${count} free ports`);
  return [...ports];
}

/** Options for waitForPort. */
export interface WaitOptions {
  /** Host to connect to (default 127.0.0.1). */
  hostname?: string;
  /** Give up after this many milliseconds (default 10000). */
  timeoutMs?: number;
  /** Fail early, with its log tail, if this process exits while waiting. */
  proc?: Managed;
}

/** Resolves once a TCP connect to the port succeeds; throws after the timeout or if `proc` dies. */
export async function waitForPort(port: number, opts: WaitOptions = {}): Promise<void> {
  const hostname = opts.hostname ?? "127.0.0.1";
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  let lastError = "";
  while (Date.now() < deadline) {
    if (opts.proc?.exited()) {
      throw new Error(
        `${opts.proc.name} exited before listening on ${port}\n${tailFile(opts.proc.logPath)}`,
      );
    }
    try {
      const conn = await Deno.connect({ hostname, port });
      conn.close();
      return;
    } catch (e) {
      lastError = (e as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const tail = opts.proc ? `\n${tailFile(opts.proc.logPath)}` : "";
  throw new Error(`Timed out waiting for ${hostname}:${port} (${lastError})${tail}`);
}

/** Result of a smoke GET. */
export interface ProbeResult {
  /** HTTP status code. */
  status: number;
  /** Body length in bytes. */
  bodyBytes: number;
}

/** Sends one HTTP/1.1 GET over a raw socket and returns status and body length (Content-Length only). */
export async function probeHttp(port: number, path = "/", timeoutMs = 5000): Promise<ProbeResult> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const req = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`;
    await conn.write(new TextEncoder().encode(req));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16 * 1024);
    let total = 0;
    while (total < 1 << 20) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      total += n;
    }
    const text = new TextDecoder().decode(concat(chunks));
    const head = text.split("\r\n\r\n", 1)[0];
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const bodyBytes = cl ? Number(cl[1]) : text.length - head.length - 4;
    return { status, bodyBytes };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
