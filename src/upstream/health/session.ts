/**
 * One host's active health check loop (Envoy's ActiveHealthCheckSession): thresholds, the first-check fast
 * path, timeouts and the interval choice. Results go into the host's shared flags.
 */
import type { TimerHandle } from "../../common/clock.ts";
import type { HostImpl } from "../host.ts";
import type { Random } from "../lb/lb.ts";
import type { HealthChecker } from "./checker.ts";
import type { HealthCheckConfig } from "./config.ts";
import type { HealthCheckFailureType } from "./event_log.ts";
import { type Probe, ProbeOutcome, type ProbeSink } from "./probe.ts";
import { HealthFlag, HostSlot } from "./state.ts";

const UNCHANGED = 0;
const CHANGED = 1;
const PENDING = 2;

/** Envoy's interval choice: base interval by traffic, result and transition, plus jitter. */
export function nextIntervalMs(
  cfg: HealthCheckConfig,
  opts: { traffic: boolean; checkPassed: boolean; hostHealthy: boolean; transition: number; random: Random },
): number {
  let base: number;
  if (!opts.traffic) {
    base = opts.hostHealthy && cfg.no_traffic_healthy_interval !== undefined
      ? cfg.no_traffic_healthy_interval
      : cfg.no_traffic_interval;
  } else if (!opts.checkPassed) {
    const unhealthy = cfg.unhealthy_interval ?? cfg.interval;
    base = opts.transition === PENDING ? cfg.unhealthy_edge_interval ?? unhealthy : unhealthy;
  } else {
    base = opts.transition === PENDING ? cfg.healthy_edge_interval ?? cfg.interval : cfg.interval;
  }
  const pctMod = Math.floor((cfg.interval_jitter_percent * base) / 100);
  let ms = base;
  if (pctMod > 0) ms += Math.floor(opts.random() * pctMod);
  if (cfg.interval_jitter > 0) ms += Math.floor(opts.random() * cfg.interval_jitter);
  return Math.max(1, ms);
}

/** One host's check loop. */
export class Session implements ProbeSink {
  host: HostImpl;
  readonly #checker: HealthChecker;
  readonly #probe: Probe;
  #interval: TimerHandle | null = null;
  #timeout: TimerHandle | null = null;
  #inFlight = false;
  #first = true;
  #numHealthy = 0;
  #numUnhealthy = 0;
  #closed = false;

  constructor(checker: HealthChecker, host: HostImpl) {
    this.#checker = checker;
    this.host = host;
    this.#probe = checker.deps.probes.create(host, this);
  }

  start(): void {
    const d = this.#checker.deps;
    const jitter = this.#checker.config.initial_jitter;
    this.#interval = d.clock.setTimer(this.#onInterval, jitter > 0 ? Math.floor(d.random() * jitter) : 0);
  }

  readonly #onInterval = (): void => {
    this.#interval = null;
    if (this.#closed) return;
    const c = this.#checker;
    c.stats.attempt.inc();
    this.#inFlight = true;
    this.#timeout = c.deps.clock.setTimer(this.#onTimeout, c.config.timeout);
    this.#probe.start();
  };

  readonly #onTimeout = (): void => {
    this.#timeout = null;
    if (!this.#inFlight || this.#closed) return;
    this.#inFlight = false;
    this.#probe.cancel();
    this.#set(HealthFlag.ACTIVE_HC_TIMEOUT);
    this.#handleFailure("NETWORK_TIMEOUT", false);
  };

  onProbeResult(outcome: ProbeOutcome): void {
    if (!this.#inFlight || this.#closed) return;
    this.#inFlight = false;
    if (this.#timeout !== null) this.#checker.deps.clock.clearTimer(this.#timeout);
    this.#timeout = null;
    switch (outcome) {
      case ProbeOutcome.SUCCESS:
        return this.#handleSuccess(false);
      case ProbeOutcome.DEGRADED:
        return this.#handleSuccess(true);
      case ProbeOutcome.RETRIABLE_FAILURE:
        return this.#handleFailure("ACTIVE", true);
      case ProbeOutcome.NETWORK_FAILURE:
        return this.#handleFailure("NETWORK", false);
      case ProbeOutcome.IMMEDIATE_FAILURE:
        this.#set(HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL);
        return this.#handleFailure("ACTIVE", false);
      default:
        return this.#handleFailure("ACTIVE", false);
    }
  }

  #flags(): number {
    return this.host.health === null ? 0 : Atomics.load(this.host.health.i32, HostSlot.FLAGS);
  }

  #set(bits: number): void {
    if (this.host.health !== null) Atomics.or(this.host.health.i32, HostSlot.FLAGS, bits);
  }

  #clear(bits: number): void {
    if (this.host.health !== null) Atomics.and(this.host.health.i32, HostSlot.FLAGS, ~bits);
  }

  #handleSuccess(degraded: boolean): void {
    const c = this.#checker;
    const log = c.deps.eventLog;
    this.#numUnhealthy = 0;
    let transition = UNCHANGED;
    if (this.#flags() & HealthFlag.FAILED_ACTIVE_HC) {
      if (this.#first || ++this.#numHealthy >= c.config.healthy_threshold) {
        this.#clear(
          HealthFlag.FAILED_ACTIVE_HC | HealthFlag.ACTIVE_HC_TIMEOUT |
            HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL,
        );
        transition = CHANGED;
        log?.addHealthy(this.host, this.#first);
      } else {
        transition = PENDING;
      }
    }
    const wasDegraded = (this.#flags() & HealthFlag.DEGRADED_ACTIVE_HC) !== 0;
    if (degraded !== wasDegraded) {
      if (degraded) {
        this.#set(HealthFlag.DEGRADED_ACTIVE_HC);
        log?.degraded(this.host);
      } else {
        this.#clear(HealthFlag.DEGRADED_ACTIVE_HC);
        log?.noLongerDegraded(this.host);
      }
      if (transition === UNCHANGED) transition = CHANGED;
    }
    transition = this.#clearPending(transition);
    if (c.config.always_log_health_check_success) log?.success(this.host);
    c.stats.success.inc();
    this.#finish(transition, true);
  }

  #handleFailure(type: HealthCheckFailureType, retriable: boolean): void {
    const c = this.#checker;
    this.#numHealthy = 0;
    let transition = UNCHANGED;
    if ((this.#flags() & HealthFlag.FAILED_ACTIVE_HC) === 0) {
      const network = type === "NETWORK" || type === "NETWORK_TIMEOUT";
      if ((!retriable && !network) || ++this.#numUnhealthy >= c.config.unhealthy_threshold) {
        this.#set(HealthFlag.FAILED_ACTIVE_HC);
        transition = CHANGED;
        c.deps.eventLog?.ejectUnhealthy(this.host, type);
      } else {
        transition = PENDING;
      }
    }
    transition = this.#clearPending(transition);
    if (this.#first || c.config.always_log_health_check_failures) {
      c.deps.eventLog?.failure(this.host, type, this.#first);
    }
    c.stats.failure.inc();
    if (type === "NETWORK" || type === "NETWORK_TIMEOUT") c.stats.network_failure.inc();
    this.#finish(transition, false);
  }

  #clearPending(transition: number): number {
    if ((this.#flags() & HealthFlag.PENDING_ACTIVE_HC) === 0) return transition;
    this.#clear(HealthFlag.PENDING_ACTIVE_HC);
    return transition === UNCHANGED ? CHANGED : transition;
  }

  #finish(transition: number, passed: boolean): void {
    const c = this.#checker;
    const d = c.deps;
    const first = this.#first;
    this.#first = false;
    if (transition === CHANGED) {
      d.state.bump();
      c.refreshGauges();
      d.onChange();
    }
    if (first) c.firstDone();
    if (this.#closed) return;
    const ms = nextIntervalMs(c.config, {
      traffic: d.hasTraffic(),
      checkPassed: passed,
      hostHealthy: (this.#flags() & HealthFlag.FAILED_ACTIVE_HC) === 0,
      transition,
      random: d.random,
    });
    this.#interval = d.clock.setTimer(this.#onInterval, ms);
  }

  close(): void {
    this.#closed = true;
    const clock = this.#checker.deps.clock;
    if (this.#interval !== null) clock.clearTimer(this.#interval);
    if (this.#timeout !== null) clock.clearTimer(this.#timeout);
    this.#interval = this.#timeout = null;
    this.#probe.close();
  }
}
