/** Running wrk and parsing its text report. */
import { runTool } from "./proc.ts";

/** What one wrk run measured. Latencies are in microseconds. */
export interface WrkResult {
  /** Requests per second (wrk's "Requests/sec"). */
  rps: number;
  /** Median latency in microseconds. */
  p50Us: number;
  /** 99th percentile latency in microseconds. */
  p99Us: number;
  /** Total requests completed. */
  requests: number;
  /** Socket errors (connect + read + write + timeout). */
  socketErrors: number;
  /** Responses with a status outside 2xx/3xx. */
  non2xx: number;
}

/** Options for runWrk. */
export interface WrkOptions {
  /** Target URL, e.g. http://127.0.0.1:8080/. */
  url: string;
  /** wrk threads (-t), default 1. */
  threads?: number;
  /** Open connections (-c), default 64. */
  connections?: number;
  /** Duration in seconds (-d), default 8. */
  durationS?: number;
  /** Path of the wrk binary, default "wrk". */
  bin?: string;
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };

/** Converts a wrk time such as "452.00us", "1.23ms" or "2.00s" to microseconds (NaN if malformed). */
export function parseWrkTime(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_US[m[2]] : NaN;
}

/** Parses wrk's report (run with --latency); throws if the req/s or percentile lines are missing. */
export function parseWrk(output: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  const p50 = /^\s+50%\s+(\S+)/m.exec(output);
  const p99 = /^\s+99%\s+(\S+)/m.exec(output);
  if (!rps || !p50 || !p99) throw new Error(`Unrecognized wrk output:\n${output}`);
  const requests = /^\s+(\d+) requests in /m.exec(output);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  return {
    rps: Number(rps[1]),
    p50Us: parseWrkTime(p50[1]),
    p99Us: parseWrkTime(p99[1]),
    requests: requests ? Number(requests[1]) : 0,
    socketErrors: sock ? sock.slice(1, 5).reduce((n, v) => n + Number(v), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** Runs wrk once with --latency (bounded by its duration plus a kill timeout) and parses the report. */
export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const durationS = opts.durationS ?? 8;
  const connections = opts.connections ?? 64;
  const threads = Math.min(opts.threads ?? 1, connections);
  const args = [`-t${threads}`, `-c${connections}`, `-d${durationS}s`, "--latency", opts.url];
  const out = await runTool(opts.bin ?? "wrk", args, durationS + 30);
  if (!out.success) {
    throw new Error(`wrk failed (code ${out.code}) for ${opts.url}: ${out.stderr}${out.stdout}`);
  }
  return parseWrk(out.stdout);
}

/** Median of a non-empty list (mean of the two middle values for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Formats microseconds for humans: "87us", "1.23ms", "2.10s". */
export function formatUs(us: number): string {
  if (!Number.isFinite(us)) return "-";
  const abs = Math.abs(us);
  if (abs < 1000) return `${Math.round(us)}us`;
  if (abs < 1e6) return `${(us / 1e3).toFixed(2)}ms`;
  return `${(us / 1e6).toFixed(2)}s`;
}
