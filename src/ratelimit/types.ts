/**
 * The messages of `envoy.service.ratelimit.v3.RateLimitService` as plain TypeScript data, shared by the
 * protobuf codec (rls_proto.ts), the JSON mapping (json.ts) and the service (service.ts).
 */

/** `RateLimitResponse.Code`. */
export const Code = { UNKNOWN: 0, OK: 1, OVER_LIMIT: 2 } as const;
/** A `RateLimitResponse.Code` value. */
export type CodeValue = typeof Code[keyof typeof Code];

/** `RateLimitResponse.RateLimit.Unit` (WEEK is 7 in the proto, after MONTH and YEAR). */
export const Unit = {
  UNKNOWN: 0,
  SECOND: 1,
  MINUTE: 2,
  HOUR: 3,
  DAY: 4,
  MONTH: 5,
  YEAR: 6,
  WEEK: 7,
} as const;
/** A unit name as written in limits files and proto3 JSON. */
export type UnitName = keyof typeof Unit;

/** Unit names by number (index = enum value). */
export const UNIT_NAMES: readonly UnitName[] = [
  "UNKNOWN",
  "SECOND",
  "MINUTE",
  "HOUR",
  "DAY",
  "MONTH",
  "YEAR",
  "WEEK",
];

/** Code names by number (index = enum value). */
export const CODE_NAMES: readonly string[] = ["UNKNOWN", "OK", "OVER_LIMIT"];

/** Window length in seconds of each unit (as the reference service: month 30 days, year 365 days); 0 for UNKNOWN. */
export const UNIT_SECONDS: readonly number[] = [0, 1, 60, 3600, 86400, 2592000, 31536000, 604800];

/** `RateLimitDescriptor.Entry`. */
export interface DescriptorEntry {
  key: string;
  value: string;
}

/** `RateLimitDescriptor.RateLimitOverride`: a limit the caller sends instead of the configured one. */
export interface LimitOverride {
  requestsPerUnit: number;
  unit: number;
}

/** `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`. */
export interface RateLimitDescriptor {
  entries: DescriptorEntry[];
  /** Field 2, when the caller overrides the limit. */
  limit?: LimitOverride;
  /** Field 3 (a UInt64Value): when present (even 0) it replaces the request's hits_addend for this descriptor. */
  hitsAddend?: number;
}

/** `RateLimitRequest`. */
export interface RateLimitRequest {
  domain: string;
  descriptors: RateLimitDescriptor[];
  /** 0 means 1. */
  hitsAddend: number;
}

/** `RateLimitResponse.RateLimit`: the limit a descriptor status refers to. */
export interface CurrentLimit {
  /** Field 3, "" when the rule has no name. */
  name: string;
  requestsPerUnit: number;
  unit: number;
}

/** `RateLimitResponse.DescriptorStatus`. */
export interface DescriptorStatus {
  code: CodeValue;
  currentLimit?: CurrentLimit;
  limitRemaining: number;
  /** `duration_until_reset` in milliseconds, absent when there is no limit. */
  durationUntilResetMs?: number;
}

/** `envoy.config.core.v3.HeaderValue` (key 1, value 2). */
export interface HeaderValue {
  key: string;
  value: string;
}

/** `RateLimitResponse` (dynamic_metadata and quota are neither produced nor decoded). */
export interface RateLimitResponse {
  overallCode: CodeValue;
  statuses: DescriptorStatus[];
  responseHeadersToAdd: HeaderValue[];
  requestHeadersToAdd: HeaderValue[];
  /** Field 5, absent when empty. */
  rawBody?: Uint8Array;
}

/** A request the service refuses (empty domain, no descriptors, no config, undecodable bytes); gRPC maps it to a status. */
export class RateLimitServiceError extends Error {
  /** The gRPC status code to answer with (3 INVALID_ARGUMENT, 13 INTERNAL, 14 UNAVAILABLE). */
  readonly grpcStatus: number;
  /** Makes an error with the gRPC status `grpcStatus`. */
  constructor(message: string, grpcStatus = 3) {
    super(message);
    this.name = "RateLimitServiceError";
    this.grpcStatus = grpcStatus;
  }
}
