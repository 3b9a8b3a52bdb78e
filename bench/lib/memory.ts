/** Memory per idle connection: hold N client connections open against a server and diff its RSS. */

import { settledRssKiB, type Supervisor, tailFile } from "./proc.ts";

/** Options for measureIdleConnections. */
export interface IdleOptions {
  /** Server process whose process-tree RSS is measured. */
  pid: number;
  /** Server port on 127.0.0.1. */
  port: number;
  /** Number of connections to hold (default 10000). */
  count?: number;
  /** "request": one GET per connection, then idle keep-alive; "connect": connect only. */
  mode?: "connect" | "request";
  /** Log file for the opener's stderr. */
  logPath?: string;
  /** Give up after this many milliseconds (default 120000). */
  timeoutMs?: number;
}

/** What measureIdleConnections measured (KiB). */
export interface IdleResult {
  /** Connection mode used. */
  mode: "connect" | "request";
  /** Connections successfully opened and held. */
  opened: number;
  /** Connections that failed to open or to get a 2xx answer. */
  failed: number;
  /** First failure message, if any. */
  firstError: string;
  /** Server RSS before opening, KiB. */
  beforeKiB: number;
  /** Server RSS with all connections held, KiB. */
  heldKiB: number;
  /** (held - before) / opened, KiB. */
  perConnKiB: number;
  /** Time the opener needed, ms. */
  openMs: number;
}

const OPENER = new URL("../idle_conns.ts", import.meta.url).pathname;

async function readLine(stream: ReadableStream<Uint8Array>, timeoutMs: number): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!text.includes("\n")) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("Timed out waiting for the connection opener");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("Timed out waiting for the connection opener")), left);
      });
      const r = await Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
      if (r.done) throw new Error("Connection opener exited without reporting");
      text += r.value;
    }
    return text.slice(0, text.indexOf("\n"));
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Connections and keep-alive requests on each of the warm-up (see warmUp). */
const WARM_UP_CONNECTIONS = 8;
const WARM_UP_PER_CONNECTION = 25;
/** Requests the warm-up makes before the baseline. */
export const WARM_UP_REQUESTS = WARM_UP_CONNECTIONS * WARM_UP_PER_CONNECTION;

/**
 * Serves a few requests before the baseline is taken: the code a server runs for its first requests (pages
 * of its executable, nuncio's start-up pages released by code_pages.ts, lazily compiled functions) is not a
 * cost of each connection held afterwards. Eight connections of 25 keep-alive requests each (curl).
 */
async function warmUp(port: number): Promise<void> {
  const urls = Array.from({ length: WARM_UP_PER_CONNECTION }, () => `http://127.0.0.1:${port}/`);
  const runs = Array.from(
    { length: WARM_UP_CONNECTIONS },
    () =>
      new Deno.Command("curl", { args: ["-s", "-o", "/dev/null", ...urls], stdout: "null", stderr: "null" })
        .output(),
  );
  await Promise.all(runs);
}

/** Holds `count` idle connections to the server and returns its RSS growth per connection. */
export async function measureIdleConnections(sup: Supervisor, opts: IdleOptions): Promise<IdleResult> {
  const count = opts.count ?? 10_000;
  const mode = opts.mode ?? "request";
  await warmUp(opts.port);
  const beforeKiB = await settledRssKiB(opts.pid, 20_000, 500, 5000);
  const opener = sup.spawn("idle-conns", Deno.execPath(), [
    "run",
    "--allow-net",
    OPENER,
    "--port",
    String(opts.port),
    "--count",
    String(count),
    "--mode",
    mode,
  ], { nofile: count + 1024, pipe: true, logPath: opts.logPath });
  try {
    let report: { opened: number; failed: number; firstError: string; ms: number };
    try {
      report = JSON.parse(await readLine(opener.child.stdout, opts.timeoutMs ?? 120_000));
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${tailFile(opts.logPath)}`);
    }
    // idle means RSS unchanged for 5 s: a runtime that gives a burst's garbage back (nuncio's idle memory
    // reducer, a second or two after the burst) is measured after it did
    const heldKiB = await settledRssKiB(opts.pid, 20_000, 500, 5000);
    return {
      mode,
      opened: report.opened,
      failed: report.failed,
      firstError: report.firstError,
      beforeKiB,
      heldKiB,
      perConnKiB: report.opened > 0 ? (heldKiB - beforeKiB) / report.opened : NaN,
      openMs: report.ms,
    };
  } finally {
    try {
      await opener.child.stdin.close();
    } catch {
      // Already closed.
    }
    await opener.stop(5000);
  }
}
