/** Text report for bench/run.ts: the throughput table, ratio lines and memory lines. */

import { formatUs, median, type WrkResult } from "./lib/wrk.ts";
import type { IdleResult } from "./lib/memory.ts";

/** Aggregated measurements for one target. */
export interface TargetResult {
  /** Stable key, e.g. "nuncio-http". */
  key: string;
  /** Human label, e.g. "nuncio HTTP". */
  label: string;
  /** Port measured. */
  port: number;
  /** One wrk result per round. */
  runs: WrkResult[];
  /** Median over rounds (undefined if no round succeeded). */
  median?: { rps: number; p50Us: number; p99Us: number };
  /** Run at a single connection, for added latency. */
  c1?: WrkResult;
  /** Sum of socket errors and non-2xx answers over all runs. */
  errors: number;
  /** Why the target was skipped or failed. */
  error?: string;
}

/** A ratio with its target. */
export interface Ratio {
  /** Line name, e.g. "http1 nuncio/nginx". */
  name: string;
  /** Measured ratio (NaN if a side is missing). */
  value: number;
  /** Minimum to pass. */
  target: number;
  /** value >= target. */
  pass: boolean;
  /** The ratio in each round. */
  perRound: number[];
}

/** Memory results. */
export interface MemoryResult {
  /** nuncio RSS right after start-up settled, KiB. */
  idleRssKiB?: number;
  /** Idle keep-alive connections held against nuncio, by mode. */
  nuncio: IdleResult[];
  /** The same for other proxies, keyed by target key (request mode). */
  compare: Record<string, IdleResult>;
  /** Why (part of) the memory benchmark failed. */
  error?: string;
}

/** Idle RSS target in MiB. */
export const IDLE_RSS_TARGET_MB = 64;
/** Per idle connection target in KiB. */
export const PER_CONN_TARGET_KIB = 16;

function pad(s: string, n: number, left = false): string {
  return left ? s.padStart(n) : s.padEnd(n);
}

function signedUs(us: number): string {
  if (!Number.isFinite(us)) return "-";
  return `${us >= 0 ? "+" : ""}${formatUs(us)}`;
}

/** Renders the throughput table; added latency columns are relative to `direct`. */
export function formatTable(targets: TargetResult[], direct: TargetResult | undefined): string {
  const header = ["target", "req/s", "p50", "p99", "+p50", "+p99", "p50 c=1", "+p50 c=1", "errors"];
  const widths = [16, 10, 9, 9, 9, 9, 9, 9, 7];
  const lines = [header.map((h, i) => pad(h, widths[i], i > 0)).join(" ")];
  for (const t of targets) {
    if (!t.median) {
      lines.push(`${pad(t.label, widths[0])} ${t.error ?? "no data"}`);
      continue;
    }
    const d = direct?.median;
    const cells = [
      t.label,
      Math.round(t.median.rps).toString(),
      formatUs(t.median.p50Us),
      formatUs(t.median.p99Us),
      d && t !== direct ? signedUs(t.median.p50Us - d.p50Us) : "",
      d && t !== direct ? signedUs(t.median.p99Us - d.p99Us) : "",
      t.c1 ? formatUs(t.c1.p50Us) : "-",
      t.c1 && direct?.c1 && t !== direct ? signedUs(t.c1.p50Us - direct.c1.p50Us) : "",
      String(t.errors),
    ];
    lines.push(cells.map((c, i) => pad(c, widths[i], i > 0)).join(" "));
  }
  return lines.join("\n");
}

/** What a ratio needs of a target: req/s per round and their median (wrk and h2load targets alike). */
export interface RatedRuns {
  runs: readonly { rps: number }[];
  median?: { rps: number };
}

/**
 * Builds a ratio of two targets' req/s: the median of the per-round ratios (each pair measured
 * close together in time, which cancels slow drift of a shared machine), or the ratio of the
 * medians when the rounds do not pair up.
 */
export function ratio(
  name: string,
  num: RatedRuns | undefined,
  den: RatedRuns | undefined,
  target: number,
): Ratio {
  let value = NaN;
  let perRound: number[] = [];
  if (num?.median && den?.median) {
    const n = Math.min(num.runs.length, den.runs.length);
    perRound = num.runs.slice(0, n).map((r, i) => r.rps / den.runs[i].rps);
    value = n > 0 && num.runs.length === den.runs.length ? median(perRound) : num.median.rps / den.median.rps;
  }
  return { name, value, target, pass: Number.isFinite(value) && value >= target, perRound };
}

/** Formats `ratio NAME = 0.xx (target >= 0.60) PASS`, or `(reference, no target)` for a NaN target. */
export function formatRatio(r: Ratio): string {
  const v = Number.isFinite(r.value) ? r.value.toFixed(2) : "n/a";
  const rounds = r.perRound.length > 1 ? `  [rounds: ${r.perRound.map((x) => x.toFixed(2)).join(" ")}]` : "";
  if (Number.isNaN(r.target)) return `ratio ${r.name} = ${v} (reference, no target)${rounds}`;
  return `ratio ${r.name} = ${v} (target >= ${r.target.toFixed(2)}) ${r.pass ? "PASS" : "FAIL"}${rounds}`;
}

function verdict(ok: boolean): string {
  return ok ? "PASS" : "FAIL";
}

/** Formats the memory lines. */
export function formatMemory(m: MemoryResult, count: number): string {
  const lines: string[] = [];
  if (m.idleRssKiB !== undefined) {
    const mb = m.idleRssKiB / 1024;
    lines.push(
      `idle RSS = ${mb.toFixed(1)} MB (target <= ${IDLE_RSS_TARGET_MB} MB) ${
        verdict(mb <= IDLE_RSS_TARGET_MB)
      }`,
    );
  }
  for (const r of m.nuncio) {
    const label = r.mode === "request" ? "per idle connection" : "per idle connection (connect only)";
    const ok = r.perConnKiB <= PER_CONN_TARGET_KIB && r.opened === count;
    const detail = `${r.opened}/${count} held, RSS ${(r.beforeKiB / 1024).toFixed(1)} -> ${
      (r.heldKiB / 1024).toFixed(1)
    } MB`;
    lines.push(
      `${label} = ${r.perConnKiB.toFixed(1)} KiB (target <= ${PER_CONN_TARGET_KIB} KiB) ${
        verdict(ok)
      }  [${detail}]`,
    );
    if (r.failed > 0) lines.push(`  ${r.failed} connections failed: ${r.firstError}`);
  }
  for (const [key, r] of Object.entries(m.compare)) {
    lines.push(
      `compare ${key} per idle connection = ${r.perConnKiB.toFixed(1)} KiB  [${r.opened}/${count} held, RSS ${
        (r.beforeKiB / 1024).toFixed(1)
      } -> ${(r.heldKiB / 1024).toFixed(1)} MB]`,
    );
  }
  if (m.error) lines.push(`memory: ${m.error}`);
  return lines.join("\n");
}
