/**
 * Issue 4's lines of `deno task bench`: h2load against nuncio (h2c -> HTTP/1.1 origin) and HAProxy
 * (`proto h2`, same origin), and gRPC unary calls/s against the echo server directly and through nuncio.
 * Starts and probes the targets, measures them in interleaved rounds and formats the table and ratios.
 */

import { findFreePorts } from "./lib/net.ts";
import { type H2loadResult, runH2load } from "./lib/h2load.ts";
import { formatUs, median } from "./lib/wrk.ts";
import { formatRatio, type Ratio, ratio } from "./report.ts";
import type { Env, NuncioLaunch } from "./targets.ts";
import {
  GRPC_HEADERS,
  grpcUrl,
  probeGrpc,
  probeH2,
  startGrpcOrigin,
  startHaproxyH2,
  startNuncioH2,
  writeGrpcBody,
} from "./h2_targets.ts";

/** Target keys of this group, in measurement order (each nuncio target next to its reference). */
export const H2_KEYS = ["haproxy-h2", "nuncio-h2", "nuncio-grpc", "grpc-direct"] as const;

/** Display order of the table: each reference before the nuncio target compared with it. */
const DISPLAY_ORDER = ["haproxy-h2", "nuncio-h2", "grpc-direct", "nuncio-grpc"];

/** Goal of `ratio h2 nuncio/haproxy-h2`. */
export const H2_RATIO_TARGET = 0.5;

/** One h2load target and its runs. */
export interface H2Target {
  /** Stable key, one of H2_KEYS. */
  key: string;
  /** Human label. */
  label: string;
  /** Port measured. */
  port: number;
  /** Plain GETs ("h2") or framed gRPC POSTs ("grpc"). */
  kind: "h2" | "grpc";
  /** One h2load result per round. */
  runs: H2loadResult[];
  /** Median over rounds (undefined if no round succeeded). */
  median?: { rps: number; meanUs: number };
  /** Non-2xx answers plus failed/errored/timed-out requests over all runs. */
  errors: number;
  /** Why the target was skipped or failed. */
  error?: string;
}

/** Load settings of the group. */
export interface H2LoadOptions {
  /** h2load clients (-c). */
  clients: number;
  /** Concurrent streams per client (-m). */
  streams: number;
  /** Seconds per measurement. */
  durationS: number;
  /** Warm-up seconds per target. */
  warmupS: number;
  /** Interleaved rounds. */
  rounds: number;
}

/** What setupH2Targets started. */
export interface H2Setup {
  /** Targets, wanted ones only (failed ones carry `error`). */
  targets: H2Target[];
  /** The framed gRPC request body file. */
  grpcBody: string;
}

function firstLines(e: unknown): string {
  return (e as Error).message.split("\n").slice(0, 6).join(" | ");
}

/**
 * Starts the wanted targets of the group (HAProxy h2, the gRPC echo server, one nuncio with the h2 and
 * gRPC listeners) and probes each; never throws, failures end up in the target's `error`.
 */
export async function setupH2Targets(
  env: Env,
  opts: { launch: NuncioLaunch; origin: number; nuncio: boolean; want: (key: string) => boolean },
): Promise<H2Setup> {
  const { launch, origin, want } = opts;
  const [haproxy, admin, h2, grpc, grpcOrigin] = findFreePorts(5);
  const grpcBody = writeGrpcBody(env.dir);
  const targets: H2Target[] = [];
  const add = (key: string, label: string, port: number, kind: "h2" | "grpc") => {
    const t: H2Target = { key, label, port, kind, runs: [], errors: 0 };
    targets.push(t);
    return t;
  };
  if (want("haproxy-h2")) {
    const t = add("haproxy-h2", "HAProxy h2", haproxy, "h2");
    try {
      await startHaproxyH2(env, { port: haproxy, origin });
      t.error = await probeH2(env.dir, haproxy) || undefined;
    } catch (e) {
      t.error = firstLines(e);
    }
  }
  const wantN2 = opts.nuncio && want("nuncio-h2");
  const wantNg = opts.nuncio && want("nuncio-grpc");
  const direct = want("grpc-direct") ? add("grpc-direct", "gRPC direct", grpcOrigin, "grpc") : undefined;
  const n2 = wantN2 ? add("nuncio-h2", "nuncio h2", h2, "h2") : undefined;
  const ng = wantNg ? add("nuncio-grpc", "nuncio gRPC", grpc, "grpc") : undefined;
  let originError = "";
  if (direct || ng) {
    try {
      await startGrpcOrigin(env, launch, grpcOrigin);
    } catch (e) {
      originError = `gRPC origin: ${firstLines(e)}`;
    }
  }
  if (direct) direct.error = originError || await probeGrpc(env.dir, grpcOrigin, grpcBody) || undefined;
  if (n2 || ng) {
    let startError = "";
    try {
      await startNuncioH2(env, launch, { admin, h2: n2 ? h2 : 0, grpc: ng ? grpc : 0, origin, grpcOrigin });
    } catch (e) {
      startError = firstLines(e);
    }
    if (n2) n2.error = startError || await probeH2(env.dir, h2) || undefined;
    if (ng) ng.error = startError || originError || await probeGrpc(env.dir, grpc, grpcBody) || undefined;
  }
  return { targets, grpcBody };
}

function load(t: H2Target, o: H2LoadOptions, grpcBody: string, durationS: number): Promise<H2loadResult> {
  const base = { clients: o.clients, streams: o.streams, durationS };
  return t.kind === "grpc"
    ? runH2load({ ...base, url: grpcUrl(t.port), dataPath: grpcBody, headers: GRPC_HEADERS })
    : runH2load({ ...base, url: `http://127.0.0.1:${t.port}/` });
}

function noteErrors(t: H2Target, r: H2loadResult): void {
  const bad = r.non2xx + r.failed;
  t.errors += bad;
  if (bad > 0) {
    console.error(
      `${t.label}: ${r.non2xx} non-2xx answers and ${r.failed} failed requests of ${r.requests}`,
    );
  }
}

/** Warm-up per target, then `rounds` interleaved rounds (every other one reversed); fills runs and medians. */
export async function measureH2(setup: H2Setup, o: H2LoadOptions): Promise<void> {
  const live = setup.targets.filter((t) => !t.error)
    .sort((a, b) => H2_KEYS.indexOf(a.key as never) - H2_KEYS.indexOf(b.key as never));
  console.error(
    `measuring ${live.length} h2load targets: h2load -c${o.clients} -m${o.streams} -t1 -D ${o.durationS}, ` +
      `${o.rounds} interleaved round(s)`,
  );
  for (const t of live) {
    if (o.warmupS <= 0) break;
    console.error(`warm-up ${t.label} (${o.warmupS}s)`);
    await load(t, o, setup.grpcBody, o.warmupS).catch((e) => (t.error = (e as Error).message));
  }
  for (let round = 1; round <= o.rounds; round++) {
    for (const t of round % 2 === 1 ? live : [...live].reverse()) {
      if (t.error) continue;
      try {
        const r = await load(t, o, setup.grpcBody, o.durationS);
        t.runs.push(r);
        noteErrors(t, r);
        console.error(`round ${round}/${o.rounds} ${t.label}: ${Math.round(r.rps)} req/s`);
      } catch (e) {
        t.error = (e as Error).message;
      }
    }
  }
  for (const t of setup.targets) {
    if (t.runs.length === 0) continue;
    t.median = { rps: median(t.runs.map((r) => r.rps)), meanUs: median(t.runs.map((r) => r.meanUs)) };
  }
}

/** The group's ratios: h2 nuncio/haproxy-h2 (goal H2_RATIO_TARGET) and grpc nuncio/direct (no goal: target 0). */
export function h2Ratios(targets: H2Target[]): { h2: Ratio; grpc: Ratio } {
  const by = (k: string) => targets.find((t) => t.key === k);
  return {
    h2: ratio("h2 nuncio/haproxy-h2", by("nuncio-h2"), by("haproxy-h2"), H2_RATIO_TARGET),
    grpc: ratio("grpc nuncio/direct", by("nuncio-grpc"), by("grpc-direct"), 0),
  };
}

/** Formats the group's table, its errors and both ratio lines. */
export function formatH2Report(targets: H2Target[], o: H2LoadOptions): string {
  const lines = [
    `h2load -c${o.clients} -m${o.streams} -t1 -D ${o.durationS}, median of ${o.rounds} round(s); ` +
    `h2: GET / (h2c -> HTTP/1.1 origin); gRPC: unary echo POSTs (calls/s)`,
    `${"target".padEnd(16)} ${"req/s".padStart(10)} ${"mean".padStart(9)} ${"max".padStart(9)} ${
      "errors".padStart(7)
    }`,
  ];
  const shown = [...targets].sort((a, b) => DISPLAY_ORDER.indexOf(a.key) - DISPLAY_ORDER.indexOf(b.key));
  for (const t of shown) {
    if (!t.median) {
      lines.push(`${t.label.padEnd(16)} ${t.error ?? "no data"}`);
      continue;
    }
    const max = Math.max(...t.runs.map((r) => r.maxUs));
    lines.push(
      `${t.label.padEnd(16)} ${String(Math.round(t.median.rps)).padStart(10)} ${
        formatUs(t.median.meanUs).padStart(9)
      } ${formatUs(max).padStart(9)} ${String(t.errors).padStart(7)}`,
    );
    if (t.error) lines.push(`note: ${t.label}: ${t.error}`);
  }
  const r = h2Ratios(targets);
  lines.push("", formatRatio(r.h2));
  const v = Number.isFinite(r.grpc.value) ? r.grpc.value.toFixed(2) : "n/a";
  const rounds = r.grpc.perRound.length > 1
    ? `  [rounds: ${r.grpc.perRound.map((x) => x.toFixed(2)).join(" ")}]`
    : "";
  const by = (k: string) => targets.find((t) => t.key === k)?.median?.rps;
  const calls = (k: string) => by(k) === undefined ? "n/a" : String(Math.round(by(k)!));
  lines.push(
    `ratio grpc nuncio/direct = ${v}  (${calls("nuncio-grpc")} vs ${calls("grpc-direct")} calls/s)${rounds}`,
  );
  const bad = targets.filter((t) => t.errors > 0);
  for (const t of bad) lines.push(`errors: ${t.label}: ${t.errors} requests not answered 2xx`);
  return lines.join("\n");
}
