/**
 * Route retry policies (envoy.config.route.v3.RetryPolicy), compiled once per route: retry_on conditions as
 * bits, retriable status codes and headers, back-off, host predicate. The router reads it per attempt.
 */
import type { UpstreamError } from "../../upstream/types.ts";
import type { HeaderMap } from "../headers.ts";
import type { RetryPolicyConfig } from "./config_retry.ts";
import { HeaderMatch } from "./matchers.ts";
import type { RouteRequest } from "./types.ts";

/** retry_on condition bits (HTTP and gRPC). */
export const RetryOn = {
  FiveXx: 1 << 0,
  GatewayError: 1 << 1,
  Reset: 1 << 2,
  ConnectFailure: 1 << 3,
  Retriable4xx: 1 << 4,
  RefusedStream: 1 << 5,
  RetriableStatusCodes: 1 << 6,
  RetriableHeaders: 1 << 7,
  EnvoyRateLimited: 1 << 8,
  ResetBeforeRequest: 1 << 9,
  Http3PostConnectFailure: 1 << 10,
  GrpcCancelled: 1 << 16,
  GrpcDeadlineExceeded: 1 << 17,
  GrpcInternal: 1 << 18,
  GrpcResourceExhausted: 1 << 19,
  GrpcUnavailable: 1 << 20,
} as const;

const HTTP_NAMES: Record<string, number> = {
  "5xx": RetryOn.FiveXx,
  "gateway-error": RetryOn.GatewayError,
  "reset": RetryOn.Reset,
  "reset-before-request": RetryOn.ResetBeforeRequest,
  "connect-failure": RetryOn.ConnectFailure,
  "retriable-4xx": RetryOn.Retriable4xx,
  "refused-stream": RetryOn.RefusedStream,
  "retriable-status-codes": RetryOn.RetriableStatusCodes,
  "retriable-headers": RetryOn.RetriableHeaders,
  "envoy-ratelimited": RetryOn.EnvoyRateLimited,
  "http3-post-connect-failure": RetryOn.Http3PostConnectFailure,
};

const GRPC_NAMES: Record<string, number> = {
  "cancelled": RetryOn.GrpcCancelled,
  "deadline-exceeded": RetryOn.GrpcDeadlineExceeded,
  "internal": RetryOn.GrpcInternal,
  "resource-exhausted": RetryOn.GrpcResourceExhausted,
  "unavailable": RetryOn.GrpcUnavailable,
};

/** grpc-status codes per gRPC retry_on bit. */
const GRPC_STATUS: [number, number][] = [
  [1, RetryOn.GrpcCancelled],
  [4, RetryOn.GrpcDeadlineExceeded],
  [13, RetryOn.GrpcInternal],
  [8, RetryOn.GrpcResourceExhausted],
  [14, RetryOn.GrpcUnavailable],
];

/** The retry_on names of `bits`, comma-separated (for debug logs). */
export function retryOnNames(bits: number): string {
  const out: string[] = [];
  for (const [name, b] of Object.entries(HTTP_NAMES)) if (bits & b) out.push(name);
  for (const [name, b] of Object.entries(GRPC_NAMES)) if (bits & b && !out.includes(name)) out.push(name);
  return out.join(",");
}

/**
 * Parses a retry_on list ("5xx,reset"): HTTP and gRPC names both count (as in the route field); unknown
 * names are returned in `unknown` (config errors) and ignored in headers, as Envoy does.
 */
export function parseRetryOn(value: string, grpcOnly = false): { bits: number; unknown: string[] } {
  let bits = 0;
  const unknown: string[] = [];
  for (const raw of value.split(",")) {
    const name = raw.trim();
    if (!name) continue;
    const b = (grpcOnly ? undefined : HTTP_NAMES[name]) ?? GRPC_NAMES[name];
    if (b === undefined) unknown.push(name);
    else bits |= b;
  }
  return { bits, unknown };
}

/** A compiled RetryPolicy (route or virtual host level). */
export class RetryPolicy {
  /** retry_on bits. */
  readonly retryOn: number;
  /** num_retries (default 1). */
  readonly numRetries: number;
  /** per_try_timeout in ms; 0 when unset. */
  readonly perTryTimeoutMs: number;
  /** retry_back_off.base_interval in ms (25 by default). */
  readonly baseIntervalMs: number;
  /** retry_back_off.max_interval in ms (10 x base by default). */
  readonly maxIntervalMs: number;
  /** True with the previous_hosts retry host predicate. */
  readonly previousHosts: boolean;
  /** host_selection_retry_max_attempts (default 1). */
  readonly hostSelectionMaxAttempts: number;
  /** retriable_status_codes. */
  readonly statusCodes: readonly number[];
  readonly #headers: HeaderMatch[];
  readonly #requestHeaders: HeaderMatch[];

  constructor(c: RetryPolicyConfig) {
    this.retryOn = c.retry_on;
    this.numRetries = c.num_retries;
    this.perTryTimeoutMs = c.per_try_timeout ?? 0;
    this.baseIntervalMs = c.retry_back_off?.base_interval ?? 25;
    this.maxIntervalMs = c.retry_back_off?.max_interval ?? this.baseIntervalMs * 10;
    this.previousHosts = c.retry_host_predicate.length > 0;
    this.hostSelectionMaxAttempts = c.host_selection_retry_max_attempts;
    this.statusCodes = c.retriable_status_codes;
    this.#headers = c.retriable_headers.map((h) => new HeaderMatch(h));
    this.#requestHeaders = c.retriable_request_headers.map((h) => new HeaderMatch(h));
  }

  /** True when the request may be retried at all (retriable_request_headers; none set means any). */
  requestRetriable(req: RouteRequest): boolean {
    const m = this.#requestHeaders;
    if (m.length === 0) return true;
    for (let i = 0; i < m.length; i++) if (m[i].match(req)) return true;
    return false;
  }

  /** True when `headers` match one of retriable_headers. */
  headersMatch(headers: HeaderMap): boolean {
    const m = this.#headers;
    if (m.length === 0) return false;
    const view: RouteRequest = { method: "", path: "", authority: "", scheme: "", headers };
    for (let i = 0; i < m.length; i++) if (m[i].match(view)) return true;
    return false;
  }
}

/**
 * Whether a response with `status` and `headers` is retriable under `retryOn` (plus `extraCodes` from
 * x-envoy-retriable-status-codes).
 */
export function retriableResponse(
  policy: RetryPolicy | null,
  retryOn: number,
  status: number,
  headers: HeaderMap,
  extraCodes: readonly number[] | null,
): boolean {
  if (retryOn & RetryOn.FiveXx && status >= 500 && status < 600) return true;
  if (retryOn & RetryOn.GatewayError && status >= 502 && status <= 504) return true;
  if (retryOn & RetryOn.Retriable4xx && status === 409) return true;
  if (retryOn & RetryOn.EnvoyRateLimited && status === 429 && headers.has("x-envoy-ratelimited")) return true;
  if (retryOn & RetryOn.RetriableStatusCodes) {
    if (policy && policy.statusCodes.includes(status)) return true;
    if (extraCodes && extraCodes.includes(status)) return true;
  }
  if (retryOn & RetryOn.RetriableHeaders && policy && policy.headersMatch(headers)) return true;
  if (retryOn >= RetryOn.GrpcCancelled) {
    const g = headers.get("grpc-status");
    if (g !== undefined) {
      const code = Number(g);
      for (const [c, bit] of GRPC_STATUS) if (code === c && retryOn & bit) return true;
    }
  }
  return false;
}

/**
 * Whether a failed attempt (no response; `err.retryable` already checked) is retriable under `retryOn`: 5xx and
 * reset take any failure, connect-failure and reset-before-request a failure to connect, gateway-error the
 * per-try timeout, refused-stream an HTTP/2 stream the upstream refused.
 */
export function retriableReset(retryOn: number, err: UpstreamError): boolean {
  if (retryOn & (RetryOn.FiveXx | RetryOn.Reset)) return true;
  if (err.beforeConnect) return (retryOn & (RetryOn.ConnectFailure | RetryOn.ResetBeforeRequest)) !== 0;
  if (err.kind === "per_try_timeout") return (retryOn & RetryOn.GatewayError) !== 0;
  if (err.kind === "remote_refused_stream_reset") return (retryOn & RetryOn.RefusedStream) !== 0;
  return false;
}

/**
 * Envoy's jittered exponential back-off: the n-th retry (n from 1) waits a uniformly random time in
 * [0, (2^n - 1) x base), capped at `max`. `random` is in [0, 1).
 */
export function backOffMs(n: number, baseMs: number, maxMs: number, random: number): number {
  const span = (Math.pow(2, Math.min(n, 30)) - 1) * baseMs;
  return Math.min(Math.floor(random * span), maxMs);
}
