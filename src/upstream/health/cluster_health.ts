/**
 * The health side of one cluster on one thread: attaches hosts to their shared slots, runs the active
 * checker and the outlier sweep on the owner (main thread), records outcomes on every thread, and keeps
 * hosts that left discovery while passing checks (Envoy's pending_dynamic_removal).
 */
import type { Clock } from "../../common/clock.ts";
import type { Logger } from "../../common/log.ts";
import type { SharedArena } from "../../common/shared_arena.ts";
import type { Counter, Scope } from "../../stats/store.ts";
import type { ClusterConfig } from "../config.ts";
import type { HostImpl } from "../host.ts";
import type { Random } from "../lb/lb.ts";
import { OutlierDetector } from "../outlier/detector.ts";
import { HealthChecker } from "./checker.ts";
import type { HealthCheckConfig } from "./config.ts";
import { HealthEventLogger } from "./event_log.ts";
import { GrpcProbeFactory, grpcProbeOptions } from "./grpc_probe.ts";
import { HttpProbeFactory, httpProbeOptions } from "./http_probe.ts";
import type { ProbeConnect, ProbeFactory } from "./probe.ts";
import { ClusterHealthState, ClusterSlot, HealthFlag, HostSlot } from "./state.ts";
import { TcpProbeFactory } from "./tcp_probe.ts";

/** What a cluster's health needs. */
export interface ClusterHealthDeps {
  arena: SharedArena;
  /** Scope prefixed `cluster.<name>.`. */
  scope: Scope;
  clock: Clock;
  random: Random;
  /** True on the thread that decides health (runs checks and sweeps, owns the gauges). */
  owner: boolean;
  /** This thread's current hosts of the cluster. */
  hosts(): readonly HostImpl[];
  /** Rebuild after a health change made on this thread. */
  onChange(): void;
  log?: Logger;
  /** Probe factory override (tests). */
  probes?: ProbeFactory;
  /** How probes connect (the cluster's transport socket); plain TCP when absent. */
  connect?: ProbeConnect;
  /** The shared health state, when the cluster manager keeps it across cluster updates; else one is made. */
  state?: ClusterHealthState;
}

/** Builds the probe factory of a health check (HTTP, gRPC or TCP). */
export function probeFactoryFor(
  cfg: HealthCheckConfig,
  cluster: string,
  connect?: ProbeConnect,
): ProbeFactory {
  if (cfg.http_health_check) return new HttpProbeFactory({ ...httpProbeOptions(cfg, cluster), connect });
  if (cfg.grpc_health_check) return new GrpcProbeFactory({ ...grpcProbeOptions(cfg, cluster), connect });
  const tcp = cfg.tcp_health_check!;
  return new TcpProbeFactory({
    send: tcp.send,
    receive: tcp.receive,
    reuseConnection: cfg.reuse_connection,
    connect,
  });
}

/** The flags a new host of `config` starts with (pending its first active check when checks are configured). */
export function initialHostFlags(config: ClusterConfig): number {
  return config.health_checks?.[0] ? HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC : 0;
}

/** Health state and machinery of one cluster on one thread. */
export class ClusterHealth {
  readonly state: ClusterHealthState;
  readonly checker: HealthChecker | null;
  readonly outlier: OutlierDetector | null;
  /** True when the cluster has an active health check (on any thread). */
  readonly activeChecks: boolean;
  readonly #deps: ClusterHealthDeps;
  readonly #keepRemoved: boolean;
  readonly #eventLog: HealthEventLogger | null = null;
  readonly #passiveFailure: Counter | null;
  readonly #failure: Counter | null;
  #traffic = false;

  /** Declares stats and finds the shared slots (config time). */
  constructor(config: ClusterConfig, deps: ClusterHealthDeps) {
    this.#deps = deps;
    const hc = config.health_checks?.[0];
    this.activeChecks = hc !== undefined;
    this.#keepRemoved = hc !== undefined && !config.ignore_health_on_host_removal;
    this.state = deps.state ?? new ClusterHealthState(deps.arena, config.name, initialHostFlags(config));
    const od = config.outlier_detection;
    this.outlier = od
      ? new OutlierDetector(od, {
        state: this.state,
        scope: deps.scope.scope("outlier_detection"),
        clock: deps.clock,
        random: deps.random,
        hosts: deps.hosts,
        onChange: deps.onChange,
        owner: deps.owner,
      })
      : null;
    this.#passiveFailure = hc ? deps.scope.counter("health_check.passive_failure") : null;
    this.#failure = hc ? deps.scope.counter("health_check.failure") : null;
    if (hc && deps.owner) {
      const probes = deps.probes ?? probeFactoryFor(hc, config.name, deps.connect);
      if (hc.event_log_path) {
        this.#eventLog = new HealthEventLogger(hc.event_log_path, {
          type: probes.type,
          cluster: config.name,
          now: () => deps.clock.now(),
        });
      }
      this.checker = new HealthChecker(hc, {
        state: this.state,
        scope: deps.scope.scope("health_check"),
        clock: deps.clock,
        random: deps.random,
        probes,
        hasTraffic: () => Atomics.load(this.state.slot, ClusterSlot.TRAFFIC) === 1,
        onChange: deps.onChange,
        eventLog: this.#eventLog ?? undefined,
      });
    } else {
      this.checker = null;
    }
  }

  /** Current health generation (one Atomics.load). */
  generation(): number {
    return Atomics.load(this.state.slot, ClusterSlot.GENERATION);
  }

  /**
   * Computes the next membership from discovery's `next` list: attaches slots, keeps hosts that left but
   * still pass active checks (flagged pending_dynamic_removal), and tells the checker and detector.
   */
  membership(prev: readonly HostImpl[], next: HostImpl[]): HostImpl[] {
    for (const h of next) {
      h.health ??= this.state.host(h.healthKey);
      h.localFlags &= ~HealthFlag.PENDING_DYNAMIC_REMOVAL;
    }
    const keys = new Set(next.map((h) => h.healthKey));
    const same = new Set(next);
    let out = next;
    for (const old of prev) {
      if (same.has(old)) continue;
      if (keys.has(old.healthKey)) {
        this.releaseHost(old); // replaced by a new object for the same key, which holds its own use
        continue;
      }
      if (this.#keepRemoved && (old.healthFlags() & HealthFlag.FAILED_ACTIVE_HC) === 0) {
        old.localFlags |= HealthFlag.PENDING_DYNAMIC_REMOVAL;
        if (out === next) out = next.slice();
        out.push(old);
      } else {
        if (this.#deps.owner) this.outlier?.hostRemoved(old);
        this.releaseHost(old);
      }
    }
    this.checker?.setHosts(out);
    return out;
  }

  /** Drops hosts pending removal that now fail active checks; returns `hosts` itself when none. */
  pruneRemoved(hosts: HostImpl[]): HostImpl[] {
    let out = hosts;
    for (let i = 0; i < hosts.length; i++) {
      const f = hosts[i].healthFlags();
      if ((f & HealthFlag.PENDING_DYNAMIC_REMOVAL) && (f & HealthFlag.FAILED_ACTIVE_HC)) {
        if (out === hosts) out = hosts.slice(0, i);
        if (this.#deps.owner) this.outlier?.hostRemoved(hosts[i]);
        this.releaseHost(hosts[i]);
      } else if (out !== hosts) {
        out.push(hosts[i]);
      }
    }
    if (out !== hosts) this.checker?.setHosts(out);
    return out;
  }

  /**
   * A host left this thread's cluster: its shared slot is given back (freed once no thread uses it) and the
   * host object keeps a private copy of its state. Idempotent.
   */
  releaseHost(host: HostImpl): void {
    if (host.health === null || host.healthReleased) return;
    host.health = this.state.releaseHost(host.healthKey, host.health);
    host.healthReleased = true;
  }

  /** Records one request attempt's outcome (router, per attempt). */
  record(host: HostImpl, code: number): void {
    this.outlier?.record(host, code);
  }

  /** Marks the cluster as having carried traffic (first connection on this thread). */
  trafficSeen(): void {
    if (this.#traffic) return;
    this.#traffic = true;
    Atomics.store(this.state.slot, ClusterSlot.TRAFFIC, 1);
  }

  /**
   * An upstream answered with `x-envoy-immediate-health-check-fail`: with active checks configured the host
   * fails at once (excluded until checks pass again), as Envoy's passive health check failure.
   */
  immediateFail(host: HostImpl): void {
    if (!this.activeChecks || host.health === null) return;
    const bits = HealthFlag.FAILED_ACTIVE_HC | HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL;
    const old = Atomics.or(host.health.i32, HostSlot.FLAGS, bits);
    this.#passiveFailure!.inc();
    this.#failure!.inc();
    if ((old & HealthFlag.FAILED_ACTIVE_HC) === 0) {
      this.state.bump();
      this.#deps.onChange();
    }
  }

  /** Starts checks and sweeps (owner); resolves after the first check of every host. */
  initialize(): Promise<void> {
    if (!this.#deps.owner) return Promise.resolve();
    this.outlier?.start();
    if (this.checker === null) return Promise.resolve();
    this.checker.start();
    return this.checker.initialized();
  }

  /** Refreshes owner gauges from shared state (before /stats). */
  syncGauges(): void {
    this.outlier?.syncGauge();
    this.checker?.refreshGauges();
  }

  /** Stops timers, checks and the event log. */
  close(): void {
    this.checker?.close();
    this.outlier?.close();
    this.#eventLog?.close();
  }
}
