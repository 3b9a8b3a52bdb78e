/**
 * Outlier detection for one cluster (Envoy's DetectorImpl), split across threads: every thread reports
 * request outcomes into the hosts' shared slots and ejects inline on consecutive 5xx / gateway failures
 * (the ejection is claimed with Atomics, so it happens once and respects max_ejection_percent); the
 * owner (main thread) runs the interval sweep: un-ejection, multiplier decay, success rate, failure %.
 */
import type { Clock, TimerHandle } from "../../common/clock.ts";
import { type Counter, Gauge, type Scope } from "../../stats/store.ts";
import { type ClusterHealthState, ClusterSlot, HealthFlag, HostF64, HostSlot } from "../health/state.ts";
import type { HostImpl } from "../host.ts";
import type { Random } from "../lb/lb.ts";
import type { OutlierConfig } from "./config.ts";
import {
  ejectionAllowed,
  ejectionTimeMs,
  failurePercentageOutliers,
  type HostVolume,
  nextBackoff,
  successRateOutliers,
} from "./math.ts";

/** Ejection kinds (index into the per-kind stats). */
export const EjectionType = {
  CONSECUTIVE_5XX: 0,
  CONSECUTIVE_GATEWAY_FAILURE: 1,
  SUCCESS_RATE: 2,
  FAILURE_PERCENTAGE: 3,
} as const;
/** One of EjectionType. */
export type EjectionType = typeof EjectionType[keyof typeof EjectionType];

const TYPE_NAMES = ["consecutive_5xx", "consecutive_gateway_failure", "success_rate", "failure_percentage"];
const FAILED = HealthFlag.FAILED_OUTLIER_CHECK;

/** What a detector needs from its cluster. */
export interface OutlierDeps {
  /** The cluster's shared health memory. */
  state: ClusterHealthState;
  /** Scope prefixed `cluster.<name>.outlier_detection.`. */
  scope: Scope;
  clock: Clock;
  random: Random;
  /** This thread's current hosts. */
  hosts(): readonly HostImpl[];
  /** Called after this thread changed a host's health (the generation is already bumped). */
  onChange(): void;
  /** True on the thread that runs the sweep (owns the ejections_active gauge). */
  owner: boolean;
}

/** The outlier detector of one cluster on one thread. */
export class OutlierDetector {
  readonly config: OutlierConfig;
  readonly #deps: OutlierDeps;
  readonly #detected: Counter[];
  readonly #enforced: Counter[];
  readonly #enforcing: number[];
  readonly #enforcedTotal: Counter;
  readonly #overflow: Counter;
  readonly #active: Gauge;
  #timer: TimerHandle | null = null;

  /** The cluster's shared slot, read through the state (it becomes a private copy when the cluster retires). */
  get #cluster(): Int32Array {
    return this.#deps.state.slot;
  }

  /** Declares stats (config time); call `start` on the owner to run sweeps. */
  constructor(config: OutlierConfig, deps: OutlierDeps) {
    this.config = config;
    this.#deps = deps;
    const s = deps.scope;
    this.#detected = TYPE_NAMES.map((n) => s.counter(`ejections_detected_${n}`));
    this.#enforced = TYPE_NAMES.map((n) => s.counter(`ejections_enforced_${n}`));
    this.#enforcing = [
      config.enforcing_consecutive_5xx,
      config.enforcing_consecutive_gateway_failure,
      config.enforcing_success_rate,
      config.enforcing_failure_percentage,
    ];
    this.#enforcedTotal = s.counter("ejections_enforced_total");
    this.#overflow = s.counter("ejections_overflow");
    this.#active = deps.owner
      ? s.gauge("ejections_active", "never_import")
      : new Gauge(s.prefix + "ejections_active", "never_import");
  }

  /** Records one request outcome on `host` (any thread, per attempt): 5xx counts as failure. */
  record(host: HostImpl, code: number): void {
    const slot = host.health;
    // a host that left the cluster (late answers of requests in flight) no longer counts
    if (slot === null || host.healthReleased) return;
    const s = slot.i32;
    Atomics.add(s, HostSlot.RQ_TOTAL, 1);
    if (code >= 500 && code < 600) {
      if (code >= 502 && code <= 504) {
        if (Atomics.add(s, HostSlot.CONSECUTIVE_GATEWAY, 1) + 1 === this.config.consecutive_gateway_failure) {
          this.#onConsecutive(host, EjectionType.CONSECUTIVE_GATEWAY_FAILURE, HostSlot.CONSECUTIVE_GATEWAY);
        }
      } else if (Atomics.load(s, HostSlot.CONSECUTIVE_GATEWAY) !== 0) {
        Atomics.store(s, HostSlot.CONSECUTIVE_GATEWAY, 0);
      }
      if (Atomics.add(s, HostSlot.CONSECUTIVE_5XX, 1) + 1 === this.config.consecutive_5xx) {
        this.#onConsecutive(host, EjectionType.CONSECUTIVE_5XX, HostSlot.CONSECUTIVE_5XX);
      }
      return;
    }
    Atomics.add(s, HostSlot.RQ_SUCCESS, 1);
    if (Atomics.load(s, HostSlot.CONSECUTIVE_5XX) !== 0) Atomics.store(s, HostSlot.CONSECUTIVE_5XX, 0);
    if (Atomics.load(s, HostSlot.CONSECUTIVE_GATEWAY) !== 0) {
      Atomics.store(s, HostSlot.CONSECUTIVE_GATEWAY, 0);
    }
  }

  #onConsecutive(host: HostImpl, type: EjectionType, counter: number): void {
    const s = host.health!.i32;
    Atomics.store(s, counter, 0);
    if (Atomics.load(s, HostSlot.FLAGS) & FAILED) return;
    this.#detected[type].inc();
    if (this.eject(host, type, this.#deps.hosts().length)) this.#deps.onChange();
  }

  /**
   * Ejects `host` unless max_ejection_percent forbids it (ejections_overflow), the enforcement roll says no,
   * or another thread ejected it first. Returns true when this call ejected it (generation bumped).
   */
  eject(host: HostImpl, type: EjectionType, hostCount: number): boolean {
    const slot = host.health;
    if (slot === null || host.healthReleased) return false;
    const c = this.#cluster;
    for (;;) {
      const active = Atomics.load(c, ClusterSlot.EJECTIONS_ACTIVE);
      if (!ejectionAllowed(active, hostCount, this.config.max_ejection_percent)) {
        this.#overflow.inc();
        return false;
      }
      if (Atomics.compareExchange(c, ClusterSlot.EJECTIONS_ACTIVE, active, active + 1) === active) break;
    }
    const enforcing = this.#enforcing[type];
    if (enforcing < 100 && !(this.#deps.random() * 100 < enforcing)) {
      Atomics.sub(c, ClusterSlot.EJECTIONS_ACTIVE, 1);
      return false;
    }
    if (Atomics.or(slot.i32, HostSlot.FLAGS, FAILED) & FAILED) {
      Atomics.sub(c, ClusterSlot.EJECTIONS_ACTIVE, 1);
      return false;
    }
    const cfg = this.config;
    const backoff = Atomics.load(slot.i32, HostSlot.BACKOFF);
    Atomics.store(
      slot.i32,
      HostSlot.BACKOFF,
      nextBackoff(cfg.base_ejection_time, cfg.max_ejection_time, backoff),
    );
    Atomics.add(slot.i32, HostSlot.NUM_EJECTIONS, 1);
    slot.f64[HostF64.EJECTED_AT] = this.#deps.clock.now();
    this.#enforcedTotal.inc();
    this.#enforced[type].inc();
    this.#deps.state.bump();
    return true;
  }

  /** Starts the interval sweep (owner only). */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = this.#deps.clock.setTimer(this.#onTimer, this.config.interval);
  }

  readonly #onTimer = (): void => {
    this.#timer = this.#deps.clock.setTimer(this.#onTimer, this.config.interval);
    this.sweep();
  };

  /** One interval: un-eject hosts whose time is up, decay multipliers, then success-rate and failure-% ejections. */
  sweep(): void {
    const cfg = this.config;
    const now = this.#deps.clock.now();
    const hosts = this.#deps.hosts();
    let changed = false;
    let ejected = 0;
    const volumes: HostVolume[] = [];
    for (const h of hosts) {
      const slot = h.health;
      if (slot === null) {
        volumes.push({ success: 0, total: 0 });
        continue;
      }
      const s = slot.i32;
      const backoff = Atomics.load(s, HostSlot.BACKOFF);
      if ((Atomics.load(s, HostSlot.FLAGS) & FAILED) === 0) {
        const unejected = slot.f64[HostF64.UNEJECTED_AT];
        if (backoff > 0 && unejected > 0 && now - unejected >= cfg.base_ejection_time) {
          Atomics.sub(s, HostSlot.BACKOFF, 1);
        }
      } else if (
        now >=
          slot.f64[HostF64.EJECTED_AT] +
            ejectionTimeMs(cfg.base_ejection_time, cfg.max_ejection_time, backoff)
      ) {
        this.#uneject(h, now);
        changed = true;
      }
      const total = Atomics.exchange(s, HostSlot.RQ_TOTAL, 0);
      const success = Math.min(total, Atomics.exchange(s, HostSlot.RQ_SUCCESS, 0));
      volumes.push({ success, total });
      if (Atomics.load(s, HostSlot.FLAGS) & FAILED) ejected++;
    }
    // The running count is recounted from the members each interval: an ejection a worker made on a host the
    // owner had already dropped (a DNS round seen at different times) cannot hold a slot for ever.
    Atomics.store(this.#cluster, ClusterSlot.EJECTIONS_ACTIVE, ejected);
    const sr = successRateOutliers(volumes, {
      minimumHosts: cfg.success_rate_minimum_hosts,
      requestVolume: cfg.success_rate_request_volume,
      stdevFactor: cfg.success_rate_stdev_factor,
    });
    hosts.forEach((h, i) => {
      if (h.health !== null) h.health.f64[HostF64.SUCCESS_RATE] = sr.mean < 0 ? -1 : sr.rates[i];
    });
    for (const i of sr.outliers) changed = this.#sweepEject(hosts[i], EjectionType.SUCCESS_RATE) || changed;
    const fp = failurePercentageOutliers(volumes, {
      minimumHosts: cfg.failure_percentage_minimum_hosts,
      requestVolume: cfg.failure_percentage_request_volume,
      threshold: cfg.failure_percentage_threshold,
    });
    for (const i of fp) changed = this.#sweepEject(hosts[i], EjectionType.FAILURE_PERCENTAGE) || changed;
    this.syncGauge();
    if (changed) this.#deps.onChange();
  }

  #sweepEject(h: HostImpl, type: EjectionType): boolean {
    if (h.health === null || Atomics.load(h.health.i32, HostSlot.FLAGS) & FAILED) return false;
    this.#detected[type].inc();
    return this.eject(h, type, this.#deps.hosts().length);
  }

  #uneject(h: HostImpl, now: number): void {
    const s = h.health!.i32;
    if ((Atomics.and(s, HostSlot.FLAGS, ~FAILED) & FAILED) === 0) return;
    Atomics.sub(this.#cluster, ClusterSlot.EJECTIONS_ACTIVE, 1);
    Atomics.store(s, HostSlot.CONSECUTIVE_5XX, 0);
    Atomics.store(s, HostSlot.CONSECUTIVE_GATEWAY, 0);
    h.health!.f64[HostF64.UNEJECTED_AT] = now;
    this.#deps.state.bump();
  }

  /** Un-ejects a host leaving the cluster so it does not hold an ejection slot (owner). */
  hostRemoved(h: HostImpl): void {
    if (h.health !== null && Atomics.load(h.health.i32, HostSlot.FLAGS) & FAILED) {
      this.#uneject(h, this.#deps.clock.now());
    }
  }

  /** Copies the shared ejection count into ejections_active (owner; before /stats). */
  syncGauge(): void {
    this.#active.set(Atomics.load(this.#cluster, ClusterSlot.EJECTIONS_ACTIVE));
  }

  /** Stops the sweep timer. */
  close(): void {
    if (this.#timer !== null) this.#deps.clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}
