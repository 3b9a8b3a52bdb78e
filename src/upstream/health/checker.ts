/**
 * Active health checking of one cluster (main thread only): one session per host runs Envoy's state
 * machine (thresholds, first-check fast path, edge and no-traffic intervals, jitter, timeouts) over a
 * Probe, and writes the result into the host's shared flags so every worker sees it.
 */
import type { Clock } from "../../common/clock.ts";
import type { Counter, Gauge, Scope } from "../../stats/store.ts";
import type { HostImpl } from "../host.ts";
import type { Random } from "../lb/lb.ts";
import type { HealthCheckConfig } from "./config.ts";
import type { HealthEventLogger } from "./event_log.ts";
import type { ProbeFactory } from "./probe.ts";
import { Session } from "./session.ts";
import { type ClusterHealthState, HealthFlag } from "./state.ts";

/** What a checker needs from its cluster. */
export interface HealthCheckerDeps {
  state: ClusterHealthState;
  /** Scope prefixed `cluster.<name>.health_check.`. */
  scope: Scope;
  clock: Clock;
  random: Random;
  probes: ProbeFactory;
  /** True once the cluster carried traffic (else checks run every no_traffic_interval). */
  hasTraffic(): boolean;
  /** Called after a host's health changed (generation already bumped). */
  onChange(): void;
  eventLog?: HealthEventLogger;
}

/** Declared `health_check.*` stats. */
export interface CheckerStats {
  attempt: Counter;
  success: Counter;
  failure: Counter;
  passive_failure: Counter;
  network_failure: Counter;
  verify_cluster: Counter;
  healthy: Gauge;
  degraded: Gauge;
}

export { nextIntervalMs } from "./session.ts";

/** The health checker of one cluster. */
export class HealthChecker {
  readonly config: HealthCheckConfig;
  readonly deps: HealthCheckerDeps;
  readonly stats: CheckerStats;
  readonly #sessions = new Map<string, Session>();
  #pendingFirst = 0;
  #initDone: (() => void) | null = null;
  #started = false;
  #closed = false;
  readonly #initialized: Promise<void>;

  /** Declares stats (config time); `setHosts` adds sessions, `start` begins checking. */
  constructor(config: HealthCheckConfig, deps: HealthCheckerDeps) {
    this.config = config;
    this.deps = deps;
    const s = deps.scope;
    this.stats = {
      attempt: s.counter("attempt"),
      success: s.counter("success"),
      failure: s.counter("failure"),
      passive_failure: s.counter("passive_failure"),
      network_failure: s.counter("network_failure"),
      verify_cluster: s.counter("verify_cluster"),
      healthy: s.gauge("healthy", "never_import"),
      degraded: s.gauge("degraded", "never_import"),
    };
    this.#initialized = new Promise((r) => this.#initDone = r);
  }

  /** Resolves once every host present at start had its first check result. */
  initialized(): Promise<void> {
    return this.#initialized;
  }

  /** Syncs sessions with the cluster's hosts: new hosts start checking, removed ones stop. */
  setHosts(hosts: readonly HostImpl[]): void {
    if (this.#closed) return;
    const keep = new Set<string>();
    for (const h of hosts) {
      keep.add(h.healthKey);
      const s = this.#sessions.get(h.healthKey);
      if (s !== undefined) {
        s.host = h;
        continue;
      }
      const session = new Session(this, h);
      this.#sessions.set(h.healthKey, session);
      if (!this.#started) this.#pendingFirst++;
      else session.start();
    }
    for (const [k, s] of this.#sessions) {
      if (!keep.has(k)) {
        s.close();
        this.#sessions.delete(k);
        if (!this.#started) this.#pendingFirst--;
      }
    }
    this.refreshGauges();
  }

  /** Starts checking every host (initial_jitter spreads the first checks). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    if (this.#pendingFirst === 0) this.#initDone?.();
    for (const s of this.#sessions.values()) s.start();
  }

  /** A session's first result arrived. */
  firstDone(): void {
    if (this.#pendingFirst > 0 && --this.#pendingFirst === 0) this.#initDone?.();
  }

  /** Recomputes the healthy / degraded gauges from the hosts' flags. */
  refreshGauges(): void {
    let healthy = 0;
    let degraded = 0;
    for (const s of this.#sessions.values()) {
      const f = s.host.healthFlags();
      if ((f & HealthFlag.FAILED_ACTIVE_HC) === 0) healthy++;
      if (f & HealthFlag.DEGRADED_ACTIVE_HC) degraded++;
    }
    this.stats.healthy.set(healthy);
    this.stats.degraded.set(degraded);
  }

  /** Stops every session and its connection. */
  close(): void {
    this.#closed = true;
    for (const s of this.#sessions.values()) s.close();
    this.#sessions.clear();
    this.#initDone?.();
  }
}
