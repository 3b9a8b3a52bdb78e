/**
 * Per-method gRPC stats the router charges for `application/grpc` requests, as Envoy's router does:
 * `cluster.<name>.grpc.<service>.<method>.<grpc-status>`, `.success` (status 0), `.failure` and `.total`.
 * Counters are created once per cluster and method (at most MAX_METHODS methods per cluster).
 */
import { httpToGrpcStatus } from "../../../../http/grpc_util.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { Counter, Scope } from "../../../../stats/store.ts";
import type { Cluster } from "../../../../upstream/types.ts";

/** Methods tracked per cluster; calls to further methods are not counted (stat cardinality guard). */
export const MAX_METHODS = 1000;

/** The counters of one service/method of one cluster. */
export class GrpcMethodStats {
  readonly total: Counter;
  readonly success: Counter;
  readonly failure: Counter;
  readonly #scope: Scope;
  readonly #codes: (Counter | undefined)[] = [];

  constructor(scope: Scope) {
    this.#scope = scope;
    this.total = scope.counter("total");
    this.success = scope.counter("success");
    this.failure = scope.counter("failure");
  }

  /** Counts one finished call with gRPC status `status`. */
  charge(status: number): void {
    let c = this.#codes[status];
    if (c === undefined) this.#codes[status] = c = this.#scope.counter(String(status));
    c.inc();
    (status === 0 ? this.success : this.failure).inc();
    this.total.inc();
  }
}

const byCluster = new WeakMap<Cluster, Map<string, GrpcMethodStats>>();

/** True when the request's content-type is gRPC (`application/grpc`, `application/grpc+proto`, ...). */
export function isGrpcRequest(headers: HeaderMap): boolean {
  const ct = headers.get("content-type");
  return ct !== undefined && ct.startsWith("application/grpc") &&
    (ct.length === 16 || ct.charCodeAt(16) === 43 || ct.charCodeAt(16) === 59); // "+" or ";"
}

/** The stats of the method `path` ("/package.Service/Method") on `cluster`; null when the path is not gRPC. */
export function grpcMethodStats(cluster: Cluster, root: Scope, path: string): GrpcMethodStats | null {
  let m = byCluster.get(cluster);
  if (m === undefined) byCluster.set(cluster, m = new Map());
  let s = m.get(path);
  if (s !== undefined) return s;
  const slash = path.indexOf("/", 1);
  if (path.charCodeAt(0) !== 47 || slash < 2 || slash === path.length - 1) return null;
  if (path.indexOf("/", slash + 1) >= 0 || path.indexOf("?") >= 0 || m.size >= MAX_METHODS) return null;
  const service = path.slice(1, slash);
  const method = path.slice(slash + 1);
  s = new GrpcMethodStats(root.scope(`cluster.${cluster.name}.grpc.${service}.${method}`));
  m.set(path, s);
  return s;
}

/** The call's gRPC status from `grpc-status` in `block` (trailers, or a trailers-only head), else from HTTP. */
export function grpcStatusOf(httpStatus: number, block: HeaderMap | null): number {
  const v = block?.get("grpc-status");
  if (v !== undefined) {
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 && n <= 1000 ? n : 2;
  }
  return httpStatus === 200 ? 2 : httpToGrpcStatus(httpStatus);
}
