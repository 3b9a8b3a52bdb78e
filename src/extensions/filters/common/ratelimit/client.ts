/**
 * What the rate-limit filters (HTTP and network) need of the global rate-limit service: one
 * ShouldRateLimit call with a deadline. The gRPC implementation lives in grpc_client.ts; the filters only
 * see this interface.
 */
import type { HeaderMap } from "../../../../http/headers.ts";
import type { DescriptorEntry } from "../../../../http/routing/rate_limits.ts";

/** RateLimitResponse.Code. */
export const RlsCode = { Unknown: 0, Ok: 1, OverLimit: 2 } as const;

/** One DescriptorStatus of a response (the parts the filters use). */
export interface RlsDescriptorStatus {
  code: number;
  /** current_limit.requests_per_unit, 0 when absent. */
  requestsPerUnit: number;
  /** current_limit.unit (SECOND 1, MINUTE 2, HOUR 3, DAY 4), 0 when absent. */
  unit: number;
  limitRemaining: number;
  /** duration_until_reset in seconds, -1 when absent. */
  secondsUntilReset: number;
}

/** A decoded RateLimitResponse. */
export interface RlsDecision {
  overallCode: number;
  statuses: RlsDescriptorStatus[];
  responseHeadersToAdd: [string, string][];
  requestHeadersToAdd: [string, string][];
}

/** One ShouldRateLimit call's input. */
export interface RlsRequest {
  domain: string;
  descriptors: DescriptorEntry[][];
  /** 0 means the service's default of 1. */
  hitsAddend: number;
  /** Initial metadata of the call (a tracing span's context), null or absent when none. */
  metadata?: HeaderMap | null;
}

/** A client of the rate-limit service (one per filter config; reuses its connection). */
export interface RateLimitClient {
  /**
   * The decision, or an Error (service error, unreachable, deadline passed): at once when the answer is known
   * without waiting (the embedded service on this event loop), else a promise that never rejects.
   */
  shouldRateLimit(req: RlsRequest, timeoutMs: number): RlsDecision | Error | Promise<RlsDecision | Error>;
  /** Closes the connection (snapshot retired). */
  close(): void;
}
