/**
 * One HTTPFault config (filter level or per route) resolved for the hot path, with Envoy's runtime overrides:
 * `fault.http.delay.fixed_delay_percent`, `fault.http.abort.abort_percent`, `fault.http.delay.fixed_duration_ms`,
 * `fault.http.abort.http_status`, `fault.http.abort.grpc_status`, `fault.http.max_active_faults` (or the keys the
 * `*_runtime` fields name), and per downstream cluster (`fault.http.<cluster>.*`, when the request carries
 * x-envoy-downstream-service-cluster) as Envoy's fault_filter.cc reads them.
 */
import { HeaderMatch } from "../../../../http/routing/matchers.ts";
import type { HttpFilterCallbacks, HttpRequest } from "../../../../http/filter.ts";
import { DENOMINATORS, type RuntimeSnapshot } from "../../../../runtime/snapshot.ts";
import type { HttpFaultConfig } from "./config.ts";

/** Header controls of header_delay / header_abort faults. */
export const FAULT_HEADERS = {
  delay: "x-envoy-fault-delay-request",
  delayPercentage: "x-envoy-fault-delay-request-percentage",
  abort: "x-envoy-fault-abort-request",
  abortGrpc: "x-envoy-fault-abort-grpc-request",
  abortPercentage: "x-envoy-fault-abort-request-percentage",
} as const;

/** Envoy's default runtime keys of the fault filter. */
export const FAULT_RUNTIME_KEYS = {
  delayPercent: "fault.http.delay.fixed_delay_percent",
  abortPercent: "fault.http.abort.abort_percent",
  delayDuration: "fault.http.delay.fixed_duration_ms",
  abortHttpStatus: "fault.http.abort.http_status",
  abortGrpcStatus: "fault.http.abort.grpc_status",
  maxActiveFaults: "fault.http.max_active_faults",
} as const;

const DOWNSTREAM_NODE = "x-envoy-downstream-service-node";
const DIGITS = /^\d{1,10}$/;

/** Parses a non-negative integer header value; -1 when absent or malformed. */
function intHeader(req: HttpRequest, name: string): number {
  const v = req.headers.get(name);
  return v !== undefined && DIGITS.test(v) ? Number(v) : -1;
}

/** A compiled HTTPFault config. */
export class FaultSettings {
  readonly #hasDelay: boolean;
  readonly #fixedDelayMs: number;
  readonly #headerDelay: boolean;
  readonly #delayNum: number;
  readonly #delayDen: number;
  readonly #hasAbort: boolean;
  /** Configured HTTP status (0: none) and gRPC status (-1: none). */
  readonly #httpStatus: number;
  readonly #grpcStatus: number;
  readonly #headerAbort: boolean;
  readonly #abortNum: number;
  readonly #abortDen: number;
  readonly #cluster: string | undefined;
  readonly #headers: HeaderMatch[];
  readonly #nodes: ReadonlySet<string> | undefined;
  /** max_active_faults, Infinity when unset. */
  readonly #maxActive: number;
  readonly #keys: { -readonly [K in keyof typeof FAULT_RUNTIME_KEYS]: string };
  /** Counts faults per x-envoy-downstream-service-cluster too (not disable_downstream_cluster_stats). */
  readonly downstreamClusterStats: boolean;

  constructor(c: HttpFaultConfig) {
    // A percentage left out is protobuf's zero value: 0 % (Envoy's configs always spell it out).
    this.#hasDelay = c.delay !== undefined;
    this.#fixedDelayMs = c.delay?.fixed_delay ?? 0;
    this.#headerDelay = c.delay?.header_delay !== undefined;
    this.#delayNum = c.delay?.percentage?.numerator ?? 0;
    this.#delayDen = DENOMINATORS[c.delay?.percentage?.denominator ?? "HUNDRED"];
    this.#hasAbort = c.abort !== undefined;
    this.#httpStatus = c.abort?.http_status ?? 0;
    this.#grpcStatus = c.abort?.grpc_status ?? -1;
    this.#headerAbort = c.abort?.header_abort !== undefined;
    this.#abortNum = c.abort?.percentage?.numerator ?? 0;
    this.#abortDen = DENOMINATORS[c.abort?.percentage?.denominator ?? "HUNDRED"];
    this.#cluster = c.upstream_cluster || undefined;
    this.#headers = c.headers.map((h) => new HeaderMatch(h));
    this.#nodes = c.downstream_nodes.length ? new Set(c.downstream_nodes) : undefined;
    this.#maxActive = c.max_active_faults ?? Infinity;
    this.#keys = {
      delayPercent: c.delay_percent_runtime || FAULT_RUNTIME_KEYS.delayPercent,
      abortPercent: c.abort_percent_runtime || FAULT_RUNTIME_KEYS.abortPercent,
      delayDuration: c.delay_duration_runtime || FAULT_RUNTIME_KEYS.delayDuration,
      abortHttpStatus: c.abort_http_status_runtime || FAULT_RUNTIME_KEYS.abortHttpStatus,
      abortGrpcStatus: c.abort_grpc_status_runtime || FAULT_RUNTIME_KEYS.abortGrpcStatus,
      maxActiveFaults: c.max_active_faults_runtime || FAULT_RUNTIME_KEYS.maxActiveFaults,
    };
    this.downstreamClusterStats = c.disable_downstream_cluster_stats !== true;
  }

  /** True when upstream_cluster, downstream_nodes and headers all let this request be faulted. */
  applies(cb: HttpFilterCallbacks): boolean {
    const req = cb.request;
    if (this.#cluster !== undefined) {
      const r = cb.route();
      // the cluster chosen with the route (weighted and cluster_header picks included)
      if (r === null || r.kind !== "route" || cb.streamInfo.upstreamCluster !== this.#cluster) return false;
    }
    if (this.#nodes) {
      const node = req.headers.get(DOWNSTREAM_NODE);
      if (node === undefined || !this.#nodes.has(node)) return false;
    }
    const hs = this.#headers;
    for (let i = 0; i < hs.length; i++) if (!hs[i].match(req)) return false;
    return true;
  }

  /** max_active_faults as the runtime has it now (Infinity: unlimited). */
  maxActive(rt: RuntimeSnapshot): number {
    return rt.getInteger(this.#keys.maxActiveFaults, this.#maxActive);
  }

  /**
   * The delay to inject in ms (0: none): the percentage drawn (the runtime's, else the header's capped by the
   * config's, else the config's), then the duration (config or header) with its runtime overrides. `ds` is the
   * request's x-envoy-downstream-service-cluster (undefined when absent): its keys replace the general ones.
   */
  delayMs(req: HttpRequest, rt: RuntimeSnapshot, ds: string | undefined): number {
    if (!this.#hasDelay) return 0;
    let num = this.#delayNum;
    if (this.#headerDelay) {
      const hp = intHeader(req, FAULT_HEADERS.delayPercentage);
      if (hp >= 0 && hp < num) num = hp;
    }
    const pctKey = ds === undefined ? this.#keys.delayPercent : `fault.http.${ds}.delay.fixed_delay_percent`;
    if (!rt.fractionEnabled(pctKey, num, this.#delayDen)) return 0;
    let ms = this.#headerDelay ? intHeader(req, FAULT_HEADERS.delay) : this.#fixedDelayMs;
    if (ms < 0) return 0; // header delay without (a valid) header
    ms = rt.getInteger(this.#keys.delayDuration, ms);
    if (ds !== undefined) ms = rt.getInteger(`fault.http.${ds}.delay.fixed_duration_ms`, ms);
    return ms > 0 ? ms : 0;
  }

  /**
   * The abort to inject, drawing the percentage as `delayMs`: an HTTP status (> 0), a gRPC status `g` as `-1 - g`,
   * or 0 for none (a number, so the hot path allocates nothing). A runtime status overrides the configured (or
   * header) one; a runtime HTTP status outside 200-599 is ignored.
   */
  abort(req: HttpRequest, rt: RuntimeSnapshot, ds: string | undefined): number {
    if (!this.#hasAbort) return 0;
    let num = this.#abortNum;
    if (this.#headerAbort) {
      const hp = intHeader(req, FAULT_HEADERS.abortPercentage);
      if (hp >= 0 && hp < num) num = hp;
    }
    const pctKey = ds === undefined ? this.#keys.abortPercent : `fault.http.${ds}.abort.abort_percent`;
    if (!rt.fractionEnabled(pctKey, num, this.#abortDen)) return 0;
    let http = this.#httpStatus;
    let grpc = this.#grpcStatus;
    if (this.#headerAbort) {
      http = intHeader(req, FAULT_HEADERS.abort);
      if (http < 200 || http >= 600) http = 0;
      grpc = intHeader(req, FAULT_HEADERS.abortGrpc);
    }
    if (http > 0) {
      // the per-cluster key falls back to the configured status, not the general key (as Envoy)
      const code = ds === undefined
        ? rt.getInteger(this.#keys.abortHttpStatus, http)
        : rt.getInteger(`fault.http.${ds}.abort.http_status`, http);
      return code >= 200 && code < 600 ? code : http;
    }
    if (grpc >= 0) {
      const g = ds === undefined
        ? rt.getInteger(this.#keys.abortGrpcStatus, grpc)
        : rt.getInteger(`fault.http.${ds}.abort.grpc_status`, grpc);
      return -1 - g;
    }
    return 0;
  }
}
