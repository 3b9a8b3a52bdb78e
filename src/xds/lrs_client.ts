/**
 * The proxy's LRS client (Envoy's LoadStatsReporter, bootstrap `cluster_manager.load_stats_config`): on the
 * main thread, opens `LoadReportingService/StreamLoadStats` on a static cluster and sends a LoadStatsRequest
 * with the node (client feature `envoy.lrs.supports_send_all_clusters`). Each LoadStatsResponse names the
 * clusters to report (or `send_all_clusters`) and `load_reporting_interval`; a cluster starts being counted
 * when it is first named, and every interval one LoadStatsRequest carries, per cluster, what happened since
 * the last report: `load_report_interval` (the time it covers), `total_dropped_requests` and one
 * `upstream_locality_stats` entry (with the locality when all of the cluster's hosts share one) with
 * `total_issued_requests`, `total_successful_requests`, `total_error_requests` (5xx answers, and attempts that
 * ended without an answer: connect failures, resets, timeouts) and `total_requests_in_progress`; the entry is
 * left out when nothing was issued and nothing is in progress, as Envoy. A failed stream is reopened with
 * jittered back-off; counting goes on, so the first report on the new stream covers the gap.
 *
 * The figures come from the proxy's merged stats (every worker's counters summed by the main thread):
 * `cluster.<name>.upstream_rq_total`, `upstream_rq_completed`, `upstream_rq_active`, `upstream_rq_<N>xx` and
 * `upstream_rq_pending_overflow` (circuit breaking; nuncio has no drop_overload). Answers are counted when
 * their head arrives and attempts when they finish, so an attempt in flight at the end of an interval is
 * settled in the next one (`loadDelta`). Stats: `load_reporter.requests` (responses received), `responses`
 * (requests sent), `errors` (failed streams).
 */
import { type Clock, systemClock, type TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type { ApiConfigSource } from "../config/config_source.ts";
import type { Counter, Scope, StatsSnapshot } from "../stats/store.ts";
import { encodeMessage } from "./codec/encode.ts";
import { decodeMessage } from "./codec/proto_json.ts";
import { messageType } from "./codec/root.ts";
import type { Locality } from "./hds_cluster.ts";
import { ServiceStream, type ServiceStreamDeps } from "./service_stream.ts";
import { errorText } from "./subscription.ts";
import { XDS_BACKOFF } from "./backoff.ts";
import type { XdsNode } from "./types.ts";

const log = new Logger("upstream");

/** The gRPC method. */
export const LRS_STREAM_METHOD = "/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats";
/** The shortest report interval honoured (a 0 s interval would report in a loop). */
export const MIN_LRS_INTERVAL_MS = 100;

const REQUEST_TYPE = "envoy.service.load_stats.v3.LoadStatsRequest";
const RESPONSE_TYPE = "envoy.service.load_stats.v3.LoadStatsResponse";

/** A cluster's cumulative figures at one moment. */
export interface ClusterLoadSample {
  name: string;
  /** upstream_rq_total: attempts sent to a host. */
  total: number;
  /** upstream_rq_completed: attempts finished, answered or not. */
  completed: number;
  /** upstream_rq_active. */
  active: number;
  /** Answers (upstream_rq_1xx .. 5xx). */
  responses: number;
  /** upstream_rq_5xx. */
  errors5xx: number;
  /** upstream_rq_pending_overflow. */
  dropped: number;
  /** The locality all of its hosts share, if they do. */
  locality?: Locality;
}

/** Reads the current figures of every cluster (the server merges worker stats). */
export type LoadSampler = () => Promise<ClusterLoadSample[]>;

/** The figures of `clusters` (name and locality) in a merged stats snapshot; runs once per report. */
export function samplesFromStats(
  snapshot: StatsSnapshot,
  clusters: readonly { name: string; locality?: Locality }[],
): ClusterLoadSample[] {
  return clusters.map(({ name, locality }) => {
    const c = (s: string) => snapshot.counters[`cluster.${name}.${s}`] ?? 0;
    let responses = 0;
    for (let k = 1; k <= 5; k++) responses += c(`upstream_rq_${k}xx`);
    return {
      name,
      total: c("upstream_rq_total"),
      completed: c("upstream_rq_completed"),
      active: snapshot.gauges[`cluster.${name}.upstream_rq_active`] ?? 0,
      responses,
      errors5xx: c("upstream_rq_5xx"),
      dropped: c("upstream_rq_pending_overflow"),
      ...(locality ? { locality } : {}),
    };
  });
}

/** What one cluster has been counted from: the figures of its last report and what is still to settle. */
export interface LoadBaseline {
  sample: ClusterLoadSample;
  /** Answers counted before their attempt finished (<= 0), settled by later completions. */
  unanswered: number;
  /** Errors counted before their attempt finished (<= 0). */
  unsettled: number;
  /** Monotonic ms the interval started. */
  since: number;
}

/** One interval's figures of a cluster. */
export interface LoadDelta {
  issued: number;
  successful: number;
  errors: number;
  inProgress: number;
  dropped: number;
}

/** A fresh baseline at `sample` (a cluster starts being counted). */
export function loadBaseline(sample: ClusterLoadSample, now: number): LoadBaseline {
  return { sample, unanswered: 0, unsettled: 0, since: now };
}

/**
 * Runs once per cluster and report: what happened between `base` and `cur`, and the next baseline. Errors are
 * 5xx answers plus attempts that finished without an answer (completions beyond the answers counted);
 * successes are the other completions. Counters that went back (/reset_counters) restart from zero.
 */
export function loadDelta(
  base: LoadBaseline,
  cur: ClusterLoadSample,
  now: number,
): [LoadDelta, LoadBaseline] {
  let p = base.sample;
  let unanswered = base.unanswered;
  let unsettled = base.unsettled;
  if (
    cur.total < p.total || cur.completed < p.completed || cur.responses < p.responses ||
    cur.errors5xx < p.errors5xx || cur.dropped < p.dropped
  ) {
    p = { ...cur, total: 0, completed: 0, responses: 0, errors5xx: 0, dropped: 0 };
    unanswered = unsettled = 0;
  }
  const completed = cur.completed - p.completed;
  const noAnswer = completed - (cur.responses - p.responses) + unanswered;
  const errors = (cur.errors5xx - p.errors5xx) + Math.max(0, noAnswer);
  const ok = completed - errors + unsettled;
  const delta: LoadDelta = {
    issued: cur.total - p.total,
    successful: Math.max(0, ok),
    errors,
    inProgress: cur.active,
    dropped: cur.dropped - p.dropped,
  };
  return [delta, { sample: cur, unanswered: Math.min(0, noAnswer), unsettled: Math.min(0, ok), since: now }];
}

/** What the LRS client needs. */
export interface LrsClientDeps extends ServiceStreamDeps {
  /** The node sent in the first LoadStatsRequest of each stream. */
  node: XdsNode;
  /** The root stats scope (`load_reporter.` is added). */
  stats: Scope;
  /** The clusters' current figures. */
  sample: LoadSampler;
}

/** A duration in proto3 JSON, microsecond precision ("10.000123s"). */
function durationJson(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(6).replace(/\.?0+$/, "")}s`;
}

/** See the file comment. */
export class LrsClient {
  readonly #deps: LrsClientDeps;
  readonly #stream: ServiceStream;
  readonly #clock: Clock;
  readonly #stats: { requests: Counter; responses: Counter; errors: Counter };
  /** Clusters counted, by name. */
  readonly #tracked = new Map<string, LoadBaseline>();
  #response: { clusters: string[]; all: boolean; intervalMs: number } | undefined;
  #timer: TimerHandle | undefined;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  /** Makes the client; `start` opens the stream. */
  constructor(source: ApiConfigSource, deps: LrsClientDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    const s = deps.stats.scope("load_reporter");
    this.#stats = {
      requests: s.counter("requests"),
      responses: s.counter("responses"),
      errors: s.counter("errors"),
    };
    this.#stream = new ServiceStream(source, {
      path: LRS_STREAM_METHOD,
      label: "LRS",
      backoff: XDS_BACKOFF,
      deps,
      handler: {
        opened: () => this.#send({ node: this.#node() }),
        message: (m) => this.#onResponse(m),
        ended: () => {
          this.#stats.errors.inc();
          this.#stopTimer();
        },
      },
    });
  }

  /** Opens the stream (and keeps reopening it until `close`). */
  start(): void {
    this.#stream.start();
  }

  /** True while the stream is open. */
  get connected(): boolean {
    return this.#stream.connected;
  }

  /** Names of the clusters being counted. */
  get tracked(): string[] {
    return [...this.#tracked.keys()];
  }

  /** Stops the stream and the reports. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimer();
    await this.#stream.close();
    await this.#chain;
  }

  #node(): Record<string, unknown> {
    return { ...this.#deps.node, client_features: ["envoy.lrs.supports_send_all_clusters"] };
  }

  #send(req: Record<string, unknown>): void {
    if (this.#stream.send(encodeMessage(messageType(REQUEST_TYPE), req))) this.#stats.responses.inc();
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(fn).catch((e) => log.warn(`LRS: ${errorText(e)}`));
    this.#chain = run;
    return run;
  }

  #onResponse(bytes: Uint8Array): Promise<void> {
    this.#stats.requests.inc();
    let r: { clusters?: string[]; send_all_clusters?: boolean; load_reporting_interval?: string };
    try {
      r = decodeMessage(messageType(RESPONSE_TYPE), bytes);
    } catch (e) {
      log.warn(`LRS: ignoring a LoadStatsResponse: ${errorText(e)}`);
      return Promise.resolve();
    }
    const interval = parseDurationJson(r.load_reporting_interval);
    this.#response = {
      clusters: r.clusters ?? [],
      all: r.send_all_clusters === true,
      intervalMs: Math.max(MIN_LRS_INTERVAL_MS, interval),
    };
    return this.#serial(() => this.#startPeriod());
  }

  /** Counts the clusters the last response names (new ones from now) and arms the next report. */
  async #startPeriod(): Promise<void> {
    const res = this.#response;
    if (!res || this.#closed) return;
    const samples = await this.#deps.sample();
    const now = this.#clock.monotonic();
    const byName = new Map(samples.map((s) => [s.name, s]));
    const wanted = res.all ? samples.map((s) => s.name) : res.clusters;
    const keep = new Set(wanted);
    for (const name of [...this.#tracked.keys()]) if (!keep.has(name)) this.#tracked.delete(name);
    for (const name of wanted) {
      const s = byName.get(name);
      if (!this.#tracked.has(name) && s) this.#tracked.set(name, loadBaseline(s, now));
    }
    this.#stopTimer();
    if (this.#closed) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      this.#serial(() => this.#report());
    }, res.intervalMs);
  }

  async #report(): Promise<void> {
    if (this.#closed || !this.#stream.connected) return;
    const samples = new Map((await this.#deps.sample()).map((s) => [s.name, s]));
    const now = this.#clock.monotonic();
    const clusterStats: Record<string, unknown>[] = [];
    for (const [name, base] of this.#tracked) {
      const cur = samples.get(name);
      if (!cur) continue; // the cluster is gone (for now): keep counting from where it was
      const [d, next] = loadDelta(base, cur, now);
      this.#tracked.set(name, next);
      const entry: Record<string, unknown> = {
        cluster_name: name,
        total_dropped_requests: d.dropped,
        load_report_interval: durationJson(now - base.since),
      };
      if (d.issued > 0 || d.inProgress > 0) {
        entry.upstream_locality_stats = [{
          ...(cur.locality ? { locality: cur.locality } : {}),
          total_successful_requests: d.successful,
          total_error_requests: d.errors,
          total_issued_requests: d.issued,
          total_requests_in_progress: d.inProgress,
        }];
      }
      clusterStats.push(entry);
    }
    this.#send({ node: this.#node(), cluster_stats: clusterStats });
    await this.#startPeriod();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }
}

/** "10s", "0.5s" (proto3 JSON Duration) -> ms; 0 when absent or malformed. */
function parseDurationJson(v: string | undefined): number {
  const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v ?? "");
  return m ? Math.round(Number(m[1]) * 1000) : 0;
}
