/**
 * The control plane's Load Reporting Service (envoy.service.load_stats.v3.LoadReportingService, the server side
 * of Envoy's LoadStatsReporter): a proxy opens `StreamLoadStats` with a LoadStatsRequest naming its node; the
 * first one is answered with a LoadStatsResponse asking for every cluster (`send_all_clusters`) every
 * `load_reporting_interval`, and every request's `cluster_stats` (the first normally has none) is added up per
 * stream: totals since the stream opened and the figures of the last report, per node and per cluster (summed
 * over the connected nodes). A stream's figures go when it ends. Stats under `lrs.` of the given scope.
 */
import { GrpcStatus } from "../grpc/frame.ts";
import type { GrpcServer, GrpcStreamCall } from "../grpc/server.ts";
import type { Counter, Gauge, Scope } from "../stats/store.ts";
import { encodeMessage } from "../xds/codec/encode.ts";
import { decodeMessage } from "../xds/codec/proto_json.ts";
import { messageType } from "../xds/codec/root.ts";
import { durationJson } from "./hds_messages.ts";

/** The gRPC method served. */
export const LRS_METHOD = "/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats";

/** Options of an LrsServer. */
export interface LrsServerOptions {
  /** The load_reporting_interval sent (default 10 s). */
  intervalMs?: number;
  /** Where `lrs.*` stats go. */
  stats: Scope;
  /** Wall clock (default Date.now). */
  now?: () => number;
}

/** Request counts of a report or a sum of reports. */
export interface LoadFigures {
  total_successful_requests: number;
  total_error_requests: number;
  total_issued_requests: number;
  total_dropped_requests: number;
}

/** The last report of a cluster: its figures, requests in progress and the interval it covered. */
export interface LastLoadReport extends LoadFigures {
  total_requests_in_progress: number;
  /** As reported ("10.002s"). */
  load_report_interval: string;
  /** Per locality (zone "" when the proxy sent none). */
  localities: (Omit<LoadFigures, "total_dropped_requests"> & {
    locality: Record<string, string>;
    total_requests_in_progress: number;
  })[];
  /** When it arrived (ISO). */
  at: string;
}

/** What `loads()` returns for one cluster of one node. */
export interface ClusterLoad {
  totals: LoadFigures & { reports: number };
  last: LastLoadReport;
}

interface NodeLoads {
  id: string;
  cluster: string;
  since: number;
  reports: number;
  clusters: Map<string, ClusterLoad>;
}

interface Stats {
  streams_total: Counter;
  streams_active: Gauge;
  requests: Counter;
  responses: Counter;
  bad_messages: Counter;
}

const REQUEST_TYPE = "envoy.service.load_stats.v3.LoadStatsRequest";
const RESPONSE_TYPE = "envoy.service.load_stats.v3.LoadStatsResponse";

const zero = (): LoadFigures => ({
  total_successful_requests: 0,
  total_error_requests: 0,
  total_issued_requests: 0,
  total_dropped_requests: 0,
});

/** A uint64 of proto3 JSON (decimal string or number; absent is 0). */
function n(v: unknown): number {
  const x = typeof v === "string" ? Number(v) : typeof v === "number" ? v : 0;
  return Number.isFinite(x) ? x : 0;
}

/** The LRS server; see the file comment. */
export class LrsServer {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #stats: Stats;
  readonly #streams = new Map<GrpcStreamCall, NodeLoads | undefined>();
  #closed = false;

  /** Makes the server; call `registerOn` to serve. */
  constructor(opts: LrsServerOptions) {
    this.#intervalMs = Math.max(1, opts.intervalMs ?? 10_000);
    this.#now = opts.now ?? Date.now;
    const s = opts.stats.scope("lrs");
    this.#stats = {
      streams_total: s.counter("streams_total"),
      streams_active: s.gauge("streams_active"),
      requests: s.counter("requests"),
      responses: s.counter("responses"),
      bad_messages: s.counter("bad_messages"),
    };
  }

  /** Registers StreamLoadStats on `grpc`; returns this. */
  registerOn(grpc: GrpcServer): this {
    grpc.registerStream(LRS_METHOD, (call) => this.#open(call));
    return this;
  }

  /**
   * For a report page: per connected node (id, cluster) and per cluster, totals since the stream opened and the
   * last report's figures; `clusters` sums them over the nodes.
   */
  loads(): {
    nodes: {
      id: string;
      cluster: string;
      connected_at: string;
      reports: number;
      clusters: Record<string, ClusterLoad>;
    }[];
    clusters: Record<string, { nodes: number; totals: LoadFigures; last_requests_in_progress: number }>;
  } {
    const nodes = [];
    const clusters: Record<
      string,
      { nodes: number; totals: LoadFigures; last_requests_in_progress: number }
    > = {};
    for (const node of this.#streams.values()) {
      if (!node) continue;
      nodes.push({
        id: node.id,
        cluster: node.cluster,
        connected_at: new Date(node.since).toISOString(),
        reports: node.reports,
        clusters: Object.fromEntries(node.clusters),
      });
      for (const [name, c] of node.clusters) {
        const sum = clusters[name] ??= { nodes: 0, totals: zero(), last_requests_in_progress: 0 };
        sum.nodes++;
        addFigures(sum.totals, c.totals);
        sum.last_requests_in_progress += c.last.total_requests_in_progress;
      }
    }
    nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { nodes, clusters };
  }

  /** Ends every stream (UNAVAILABLE); the gRPC server is the caller's to close. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of [...this.#streams.keys()]) {
      call.end(GrpcStatus.UNAVAILABLE, "control plane shutting down");
    }
    this.#streams.clear();
  }

  #open(call: GrpcStreamCall): void {
    if (this.#closed) return call.end(GrpcStatus.UNAVAILABLE, "control plane shutting down");
    this.#streams.set(call, undefined);
    this.#stats.streams_total.inc();
    this.#stats.streams_active.inc();
    call.onMessage = (m) => this.#request(call, m);
    call.onHalfClose = () => call.end();
    call.onClose = () => {
      if (this.#streams.delete(call)) this.#stats.streams_active.dec();
    };
  }

  #request(call: GrpcStreamCall, bytes: Uint8Array): void {
    let req: { node?: { id?: string; cluster?: string }; cluster_stats?: ClusterStatsJson[] };
    try {
      req = decodeMessage(messageType(REQUEST_TYPE), bytes);
    } catch (e) {
      this.#stats.bad_messages.inc();
      return call.end(GrpcStatus.INVALID_ARGUMENT, (e as Error).message);
    }
    this.#stats.requests.inc();
    let node = this.#streams.get(call);
    if (!node) {
      const id = req.node?.id ?? "";
      if (id === "") {
        this.#stats.bad_messages.inc();
        return call.end(GrpcStatus.INVALID_ARGUMENT, "The first LoadStatsRequest needs node.id");
      }
      node = { id, cluster: req.node?.cluster ?? "", since: this.#now(), reports: 0, clusters: new Map() };
      this.#streams.set(call, node);
      const res = { send_all_clusters: true, load_reporting_interval: durationJson(this.#intervalMs) };
      if (call.send(encodeMessage(messageType(RESPONSE_TYPE), res))) this.#stats.responses.inc();
    }
    if (!req.cluster_stats?.length) return;
    node.reports++;
    const at = new Date(this.#now()).toISOString();
    for (const cs of req.cluster_stats) {
      const name = cs.cluster_name ?? "";
      const last: LastLoadReport = {
        ...zero(),
        total_requests_in_progress: 0,
        total_dropped_requests: n(cs.total_dropped_requests),
        load_report_interval: cs.load_report_interval ?? "0s",
        localities: [],
        at,
      };
      for (const l of cs.upstream_locality_stats ?? []) {
        const loc = {
          locality: l.locality ?? {},
          total_successful_requests: n(l.total_successful_requests),
          total_error_requests: n(l.total_error_requests),
          total_issued_requests: n(l.total_issued_requests),
          total_requests_in_progress: n(l.total_requests_in_progress),
        };
        last.localities.push(loc);
        last.total_successful_requests += loc.total_successful_requests;
        last.total_error_requests += loc.total_error_requests;
        last.total_issued_requests += loc.total_issued_requests;
        last.total_requests_in_progress += loc.total_requests_in_progress;
      }
      const c = node.clusters.get(name);
      if (c) {
        addFigures(c.totals, last);
        c.totals.reports++;
        c.last = last;
      } else {
        const totals = { ...zero(), reports: 1 };
        addFigures(totals, last);
        node.clusters.set(name, { totals, last });
      }
    }
  }
}

function addFigures(to: LoadFigures, from: LoadFigures): void {
  to.total_successful_requests += from.total_successful_requests;
  to.total_error_requests += from.total_error_requests;
  to.total_issued_requests += from.total_issued_requests;
  to.total_dropped_requests += from.total_dropped_requests;
}

interface ClusterStatsJson {
  cluster_name?: string;
  total_dropped_requests?: string | number;
  load_report_interval?: string;
  upstream_locality_stats?: {
    locality?: Record<string, string>;
    total_successful_requests?: string | number;
    total_error_requests?: string | number;
    total_issued_requests?: string | number;
    total_requests_in_progress?: string | number;
  }[];
}
