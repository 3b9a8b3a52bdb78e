/** Running h2load (nghttp2-client) and parsing its text report. */

import { parseWrkTime } from "./wrk.ts";
import { runTool } from "./proc.ts";

/** What one h2load run measured. Latencies are in microseconds. */
export interface H2loadResult {
  /** Requests per second ("finished in ..., N req/s"). */
  rps: number;
  /** Mean "time for request" in microseconds. */
  meanUs: number;
  /** Largest "time for request" in microseconds. */
  maxUs: number;
  /** Requests done. */
  requests: number;
  /** Requests answered with 2xx. */
  ok2xx: number;
  /** Answers with 3xx, 4xx or 5xx. */
  non2xx: number;
  /** Requests failed, errored or timed out (no answer). */
  failed: number;
}

/** Options for runH2load. */
export interface H2loadOptions {
  /** Target URL, e.g. http://127.0.0.1:8080/ (h2c with prior knowledge). */
  url: string;
  /** Concurrent clients (-c), default 32. */
  clients?: number;
  /** Max concurrent streams per client (-m), default 10. */
  streams?: number;
  /** Duration in seconds (-D), default 8. */
  durationS?: number;
  /** File posted as every request body (-d); the method becomes POST. */
  dataPath?: string;
  /** Extra request headers ("name: value", -H). */
  headers?: string[];
  /** Path of the h2load binary, default "h2load". */
  bin?: string;
}

/** Parses h2load's report; throws if the "finished in" or "requests:" lines are missing. */
export function parseH2load(output: string): H2loadResult {
  const fin = /^finished in [\d.]+\w+, ([\d.]+) req\/s/m.exec(output);
  const req =
    /^requests: (\d+) total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m
      .exec(output);
  const codes = /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/m.exec(output);
  if (!fin || !req || !codes) throw new Error(`Unrecognized h2load output:\n${output.slice(-2000)}`);
  const time = /^time for request:\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(output);
  const failed = Number(req[3]) + Number(req[4]) + Number(req[5]);
  const done = Number(req[2]);
  const ok2xx = Number(codes[1]);
  return {
    rps: Number(fin[1]),
    meanUs: time ? parseWrkTime(time[3]) : NaN,
    maxUs: time ? parseWrkTime(time[2]) : NaN,
    requests: done,
    ok2xx,
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    failed,
  };
}

/** The h2load argument list for `opts` (h2c prior knowledge, one thread). */
export function h2loadArgs(opts: H2loadOptions): string[] {
  const args = [
    `-c${opts.clients ?? 32}`,
    `-m${opts.streams ?? 10}`,
    "-t1",
    "-D",
    String(opts.durationS ?? 8),
  ];
  if (opts.dataPath) args.push("-d", opts.dataPath);
  for (const h of opts.headers ?? []) args.push("-H", h);
  args.push(opts.url);
  return args;
}

/** Runs h2load once (bounded by its duration plus a kill timeout) and parses the report. */
export async function runH2load(opts: H2loadOptions): Promise<H2loadResult> {
  const durationS = opts.durationS ?? 8;
  const out = await runTool(opts.bin ?? "h2load", h2loadArgs(opts), durationS + 30);
  try {
    const r = parseH2load(out.stdout);
    if (r.requests === 0) throw new Error("No request completed");
    return r;
  } catch (e) {
    throw new Error(
      `h2load failed (code ${out.code}) for ${opts.url}: ${(e as Error).message} ${out.stderr}`,
    );
  }
}
