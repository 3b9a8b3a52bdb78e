/** One HTTPFault config (filter level or per route) resolved for the hot path. */
import { HeaderMatch } from "../../../../http/routing/matchers.ts";
import type { HttpFilterCallbacks, HttpRequest } from "../../../../http/filter.ts";
import { Fraction } from "../../common/config.ts";
import type { HttpFaultConfig } from "./config.ts";

/** Header controls of header_delay / header_abort faults. */
export const FAULT_HEADERS = {
  delay: "x-envoy-fault-delay-request",
  delayPercentage: "x-envoy-fault-delay-request-percentage",
  abort: "x-envoy-fault-abort-request",
  abortGrpc: "x-envoy-fault-abort-grpc-request",
  abortPercentage: "x-envoy-fault-abort-request-percentage",
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
  readonly #fixedDelayMs: number;
  readonly #headerDelay: boolean;
  readonly #delayPct: Fraction | undefined;
  readonly #httpStatus: number;
  readonly #grpcStatus: number;
  readonly #headerAbort: boolean;
  readonly #abortPct: Fraction | undefined;
  readonly #cluster: string | undefined;
  readonly #headers: HeaderMatch[];
  readonly #nodes: ReadonlySet<string> | undefined;
  /** max_active_faults, Infinity when unset. */
  readonly maxActive: number;
  /** Counts faults per x-envoy-downstream-service-cluster too (not disable_downstream_cluster_stats). */
  readonly downstreamClusterStats: boolean;

  constructor(c: HttpFaultConfig) {
    // A percentage left out is protobuf's zero value: 0 % (Envoy's configs always spell it out).
    this.#fixedDelayMs = c.delay?.fixed_delay ?? 0;
    this.#headerDelay = c.delay?.header_delay !== undefined;
    this.#delayPct = c.delay ? Fraction.of(c.delay.percentage, 0) : undefined;
    this.#httpStatus = c.abort?.http_status ?? 0;
    this.#grpcStatus = c.abort?.grpc_status ?? -1;
    this.#headerAbort = c.abort?.header_abort !== undefined;
    this.#abortPct = c.abort ? Fraction.of(c.abort.percentage, 0) : undefined;
    this.#cluster = c.upstream_cluster || undefined;
    this.#headers = c.headers.map((h) => new HeaderMatch(h));
    this.#nodes = c.downstream_nodes.length ? new Set(c.downstream_nodes) : undefined;
    this.maxActive = c.max_active_faults ?? Infinity;
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

  /** The delay to inject in ms (0: none), drawing the percentage. */
  delayMs(req: HttpRequest): number {
    const pct = this.#delayPct;
    if (!pct) return 0;
    if (!this.#headerDelay) return this.#fixedDelayMs > 0 && pct.hit() ? this.#fixedDelayMs : 0;
    const ms = intHeader(req, FAULT_HEADERS.delay);
    if (ms <= 0) return 0;
    const hp = intHeader(req, FAULT_HEADERS.delayPercentage);
    return (hp < 0 ? pct.hit() : pct.hitCapped(hp)) ? ms : 0;
  }

  /**
   * The abort to inject, drawing the percentage: an HTTP status (> 0), a gRPC status `g` as `-1 - g`, or 0 for
   * none (a number, so the hot path allocates nothing).
   */
  abort(req: HttpRequest): number {
    const pct = this.#abortPct;
    if (!pct) return 0;
    let http = this.#httpStatus;
    let grpc = this.#grpcStatus;
    if (this.#headerAbort) {
      http = intHeader(req, FAULT_HEADERS.abort);
      if (http < 200 || http >= 600) http = 0;
      grpc = intHeader(req, FAULT_HEADERS.abortGrpc);
      if (http === 0 && grpc < 0) return 0;
      const hp = intHeader(req, FAULT_HEADERS.abortPercentage);
      if (!(hp < 0 ? pct.hit() : pct.hitCapped(hp))) return 0;
    } else if (!pct.hit()) return 0;
    return http > 0 ? http : -1 - grpc;
  }
}
