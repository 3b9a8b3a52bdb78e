/**
 * `enable_command_stats`: Envoy's per-cluster upstream command stats (RedisCommandStats),
 * `cluster.<name>.upstream_commands.<command>.{total,success,failure,latency}` and
 * `cluster.<name>.upstream_commands.upstream_rq_time` (latencies in microseconds). A reply that is a Redis error
 * counts as a failure, as in Envoy's client. Only built and paid for when the setting is on.
 */
import type { Counter, Histogram, Scope } from "../../../../stats/store.ts";
import type { ReplyHandler } from "./pool.ts";

/** The stats of one command on one cluster. */
export interface UpstreamCommandStats {
  readonly total: Counter;
  readonly success: Counter;
  readonly failure: Counter;
  readonly latency: Histogram;
  readonly rqTime: Histogram;
  readonly clock: { now: number };
}

/** Per-cluster cache of the stats by command name. */
export class UpstreamCommandStatsSet {
  readonly #byName = new Map<string, UpstreamCommandStats>();
  readonly #rqTime: Histogram;

  constructor(readonly scope: Scope, readonly clock: { now: number }) {
    this.#rqTime = scope.histogram("upstream_commands.upstream_rq_time", "unspecified");
  }

  /** The stats of `command` (lower case), made on first use. */
  get(command: string): UpstreamCommandStats {
    let s = this.#byName.get(command);
    if (s === undefined) {
      const p = `upstream_commands.${command}.`;
      s = {
        total: this.scope.counter(p + "total"),
        success: this.scope.counter(p + "success"),
        failure: this.scope.counter(p + "failure"),
        latency: this.scope.histogram(p + "latency", "unspecified"),
        rqTime: this.#rqTime,
        clock: this.clock,
      };
      this.#byName.set(command, s);
    }
    return s;
  }
}

/** Wraps a reply handler to count one upstream command (allocated only with enable_command_stats). */
export class CountingHandler implements ReplyHandler {
  readonly #start: number;
  constructor(readonly inner: ReplyHandler, readonly stats: UpstreamCommandStats) {
    this.#start = stats.clock.now;
    stats.total.inc();
  }

  #done(ok: boolean): void {
    (ok ? this.stats.success : this.stats.failure).inc();
    const us = (this.stats.clock.now - this.#start) * 1000;
    this.stats.latency.record(us);
    this.stats.rqTime.record(us);
  }

  onReply(buf: Uint8Array, s: number, e: number): void {
    this.#done(buf[s] !== 45);
    this.inner.onReply(buf, s, e);
  }

  onFailure(): void {
    this.#done(false);
    this.inner.onFailure();
  }
}
