/**
 * envoy.filters.http.fault: injects delays (on the worker's timer wheel) and aborts (local replies) into
 * requests that match, from config or from x-envoy-fault-* headers, with Envoy's runtime overrides (see
 * settings.ts). Flags DI and FI; stats under `http.<stat_prefix>.fault.`; the active fault count is shared by all
 * workers for max_active_faults.
 */
import { Logger } from "../../../../common/log.ts";
import type { SharedArena } from "../../../../common/shared_arena.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type TimeoutTarget, TimerEntry, type TimerWheel } from "../../../../common/timer_wheel.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
} from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import type { PerFilterConfig } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter, Gauge, Scope } from "../../../../stats/store.ts";
import { perRouteConfig } from "../../common/config.ts";
import { runtime } from "../../../../runtime/current.ts";
import type { HttpFaultConfig } from "./config.ts";
import { FaultSettings } from "./settings.ts";

/** The canonical extension name (the default typed_per_filter_config key). */
export const FAULT_NAME = "envoy.filters.http.fault";

const DOWNSTREAM_CLUSTER = "x-envoy-downstream-service-cluster";

/** Per-HCM fault state: settings, stats, the shared active-fault count and per-route settings. */
export class FaultFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly settings: FaultSettings;
  readonly timers: TimerWheel;
  readonly stats: {
    delays_injected: Counter;
    aborts_injected: Counter;
    faults_overflow: Counter;
    active_faults: Gauge;
  };
  /** Active faults across all workers (Int32 [0]). */
  readonly active: Int32Array;
  readonly #perRoute = new WeakMap<PerFilterConfig, FaultSettings>();
  readonly #scope: Scope;
  readonly #shared: SharedArena;
  readonly #slotKey: string;

  constructor(config: HttpFaultConfig, ctx: FactoryContext, readonly name: string, statPrefix: string) {
    this.settings = new FaultSettings(config);
    this.timers = ctx.timers;
    const s = this.#scope = ctx.stats.scope(`http.${statPrefix}.fault.`);
    this.stats = {
      delays_injected: s.counter("delays_injected"),
      aborts_injected: s.counter("aborts_injected"),
      faults_overflow: s.counter("faults_overflow"),
      active_faults: s.gauge("active_faults"),
    };
    this.#shared = ctx.shared;
    this.#slotKey = `fault/${ctx.listenerScope.prefix}${statPrefix}/${name}`;
    this.active = ctx.shared.slot(this.#slotKey, 2);
  }

  /** The snapshot is retired: the max_active_faults slot goes back to the SharedArena. */
  close(): void {
    this.#shared.release(this.#slotKey);
  }

  /** The route's own HTTPFault when it has one, else the filter's. */
  settingsFor(cb: HttpFilterCallbacks): FaultSettings {
    const pfc = perRouteConfig(cb, this.name);
    if (!pfc) return this.settings;
    let s = this.#perRoute.get(pfc);
    if (!s) this.#perRoute.set(pfc, s = new FaultSettings(pfc.config as HttpFaultConfig));
    return s;
  }

  /** Counts `name` under `fault.<downstream cluster>.` as well (Envoy's per-downstream-cluster fault stats). */
  countFor(s: FaultSettings, cb: HttpFilterCallbacks, name: "delays_injected" | "aborts_injected"): void {
    if (!s.downstreamClusterStats) return;
    const cluster = cb.request.headers.get(DOWNSTREAM_CLUSTER);
    if (cluster) this.#scope.counter(`${cluster}.${name}`).inc();
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new FaultFilter(this, cb);
  }
}

const log = new Logger("filter");

class FaultFilter implements HttpFilter, TimeoutTarget {
  #settings: FaultSettings | undefined;
  /** x-envoy-downstream-service-cluster of the request (its runtime keys), undefined when absent. */
  #downstream: string | undefined;
  #activeCounted = false;
  #timer: TimerEntry | undefined;
  #resume: ((s: HttpFilterStatus | Promise<HttpFilterStatus>) => void) | undefined;

  constructor(readonly f: FaultFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(_endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const s = this.f.settingsFor(this.cb);
    if (!s.applies(this.cb)) {
      if (log.enabled("debug")) {
        log.debug(
          `${this.cb.streamInfo.logPrefix()}fault filter not applied: upstream_cluster, downstream_nodes or ` +
            "headers do not match",
        );
      }
      return HttpFilterStatus.Continue;
    }
    this.#settings = s;
    const ds = this.#downstream = this.cb.request.headers.get(DOWNSTREAM_CLUSTER);
    const ms = s.delayMs(this.cb.request, runtime(), ds);
    if (ms > 0 && this.#tryCountActive(s)) {
      if (log.enabled("debug")) log.debug(`${this.cb.streamInfo.logPrefix()}fault filter delays ${ms} ms`);
      this.f.stats.delays_injected.inc();
      this.f.countFor(s, this.cb, "delays_injected");
      this.cb.streamInfo.responseFlags |= ResponseFlag.DelayInjected;
      this.#timer = new TimerEntry(this);
      this.f.timers.arm(this.#timer, ms);
      return new Promise<HttpFilterStatus>((resolve) => this.#resume = resolve);
    }
    return this.#maybeAbort(false);
  }

  /** The delay is over: abort if drawn now, else let the request go on (no longer an active fault). */
  onTimeout(_kind: number): void {
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.(this.#maybeAbort(true));
  }

  #maybeAbort(afterDelay: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const a = this.#settings!.abort(this.cb.request, runtime(), this.#downstream);
    if (log.enabled("debug")) {
      log.debug(
        `${this.cb.streamInfo.logPrefix()}fault filter ${
          a === 0
            ? "does not abort (percentage not hit or no abort)"
            : `aborts with ${a < 0 ? "gRPC " + (-1 - a) : a}`
        }`,
      );
    }
    if (a === 0 || !this.#tryCountActive(this.#settings!)) {
      // Envoy: a delay that is not followed by an abort stops counting as an active fault
      if (afterDelay) this.#releaseActive();
      return HttpFilterStatus.Continue;
    }
    this.f.stats.aborts_injected.inc();
    this.f.countFor(this.#settings!, this.cb, "aborts_injected");
    const cb = this.cb;
    if (a < 0) {
      // gRPC abort: a trailers-only reply (HTTP 200 with grpc-status in the headers)
      const info = cb.streamInfo;
      info.responseFlags |= ResponseFlag.FaultInjected;
      info.responseCodeDetails = "fault_filter_abort";
      const h = new HeaderMap();
      h.addLower("content-type", "application/grpc");
      h.addLower("grpc-status", String(-1 - a));
      h.addLower("grpc-message", "fault filter abort");
      return cb.encodeHeaders({ status: 200, headers: h }, true).then(() => HttpFilterStatus.StopIteration);
    }
    return cb.sendLocalReply(a, "fault filter abort", {
      flags: ResponseFlag.FaultInjected,
      details: "fault_filter_abort",
    }).then(() => HttpFilterStatus.StopIteration);
  }

  /**
   * Envoy's tryIncActiveFaults: one active fault per request; over max_active_faults (all workers, as the runtime
   * has it now) the fault is not injected and faults_overflow counts.
   */
  #tryCountActive(s: FaultSettings): boolean {
    if (this.#activeCounted) return true;
    if (Atomics.load(this.f.active, 0) >= s.maxActive(runtime())) {
      this.f.stats.faults_overflow.inc();
      if (log.enabled("debug")) {
        log.debug(`${this.cb.streamInfo.logPrefix()}fault filter not applied: max_active_faults reached`);
      }
      return false;
    }
    this.#countActive();
    return true;
  }

  #releaseActive(): void {
    if (!this.#activeCounted) return;
    this.#activeCounted = false;
    Atomics.sub(this.f.active, 0, 1);
    this.f.stats.active_faults.dec();
  }

  #countActive(): void {
    if (this.#activeCounted) return;
    this.#activeCounted = true;
    Atomics.add(this.f.active, 0, 1);
    this.f.stats.active_faults.inc();
  }

  onDestroy(): void {
    if (this.#timer) this.f.timers.disarm(this.#timer);
    const resume = this.#resume;
    this.#resume = undefined;
    resume?.(HttpFilterStatus.StopIteration);
    this.#releaseActive();
  }
}
