/**
 * gRPC facts the connection manager needs: recognising gRPC requests, Envoy's HTTP to gRPC status mapping for
 * local replies, grpc-message percent-encoding and the grpc-timeout header.
 */
import type { HeaderMap } from "./headers.ts";

/** gRPC status codes used by local replies. */
export const GrpcStatus = {
  Ok: 0,
  Unknown: 2,
  DeadlineExceeded: 4,
  PermissionDenied: 7,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  Unauthenticated: 16,
} as const;

/** True when `contentType` is application/grpc, application/grpc+<fmt> or application/grpc;<params>. */
export function isGrpcContentType(contentType: string | undefined): boolean {
  if (contentType === undefined || !contentType.startsWith("application/grpc")) return false;
  if (contentType.length === 16) return true;
  const c = contentType.charCodeAt(16);
  return c === 43 || c === 59; // '+' or ';'
}

/** True when the request headers carry a gRPC content-type. */
export function isGrpcRequest(headers: HeaderMap): boolean {
  return isGrpcContentType(headers.get("content-type"));
}

/** Envoy's (and gRPC's documented) mapping of an HTTP status to a gRPC status. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.Internal;
    case 401:
      return GrpcStatus.Unauthenticated;
    case 403:
      return GrpcStatus.PermissionDenied;
    case 404:
      return GrpcStatus.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.Unavailable;
    default:
      return GrpcStatus.Unknown;
  }
}

/** Decodes a percent-encoded grpc-message (a malformed one is kept as received). */
export function decodeGrpcMessage(msg: string): string {
  try {
    return decodeURIComponent(msg);
  } catch {
    return msg;
  }
}

const HEX = "0123456789ABCDEF";

/** Percent-encodes a grpc-message value (bytes outside 0x20-0x7E and '%'), as the gRPC HTTP/2 spec requires. */
export function encodeGrpcMessage(msg: string): string {
  let plain = true;
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return msg;
  let out = "";
  for (const b of new TextEncoder().encode(msg)) {
    if (b < 0x20 || b > 0x7e || b === 0x25) out += "%" + HEX[b >> 4] + HEX[b & 15];
    else out += String.fromCharCode(b);
  }
  return out;
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * The grpc-timeout header in ms (`1..8 digits` + unit H M S m u n), rounded up to whole ms; undefined when
 * absent or malformed.
 */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (v === undefined || v.length < 2 || v.length > 9) return undefined;
  const unit = UNIT_MS[v[v.length - 1]];
  if (unit === undefined) return undefined;
  let n = 0;
  for (let i = 0; i < v.length - 1; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return Math.ceil(n * unit);
}

/** The route's max_stream_duration settings in ms (each undefined when unset). */
export interface StreamDurationConfig {
  max_stream_duration?: number;
  grpc_timeout_header_max?: number;
  grpc_timeout_header_offset?: number;
}

/**
 * Envoy's stream duration for a route with max_stream_duration: the grpc-timeout header (capped by
 * grpc_timeout_header_max unless that is 0, minus grpc_timeout_header_offset) when both are present, else
 * max_stream_duration, else `hcmDefault`. 0 means no limit.
 */
export function streamDurationMs(
  c: StreamDurationConfig,
  grpcTimeout: string | undefined,
  hcmDefault: number,
): number {
  const header = c.grpc_timeout_header_max !== undefined ? parseGrpcTimeout(grpcTimeout) : undefined;
  if (header === undefined) return c.max_stream_duration ?? hcmDefault;
  let t = header;
  const max = c.grpc_timeout_header_max!;
  if (max > 0 && t > max) t = max;
  const off = c.grpc_timeout_header_offset;
  if (t !== 0 && off !== undefined && off > 0) t = off < t ? t - off : 0;
  return t;
}
