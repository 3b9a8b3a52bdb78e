/**
 * Envoy's access log command operators (%REQ(X?Y):Z%, %RESPONSE_CODE%, ...): parsed once per format
 * string into parts, evaluated per log entry with a switch (no per-entry closures).
 */
import type { Clock } from "../common/clock.ts";
import { formatResponseFlags, ResponseFlag } from "../common/response_flags.ts";
import type { StreamInfo } from "../common/stream_info.ts";
import type { HeaderMap } from "../http/headers.ts";
import { TimeFormat } from "./strftime.ts";

/** Operator kinds. */
export const Op = {
  StartTime: 1,
  Req: 2,
  Resp: 3,
  Trailer: 4,
  Protocol: 5,
  ResponseCode: 6,
  ResponseCodeDetails: 7,
  ResponseFlags: 8,
  ResponseFlagsLong: 9,
  BytesReceived: 10,
  BytesSent: 11,
  Duration: 12,
  ResponseDuration: 13,
  UpstreamHost: 14,
  UpstreamCluster: 15,
  UpstreamLocalAddress: 16,
  UpstreamTransportFailureReason: 17,
  DownstreamRemoteAddress: 18,
  DownstreamRemoteAddressWithoutPort: 19,
  DownstreamLocalAddress: 20,
  DownstreamLocalAddressWithoutPort: 21,
  DownstreamDirectRemoteAddress: 22,
  DownstreamDirectRemoteAddressWithoutPort: 23,
  RequestedServerName: 24,
  RouteName: 25,
  ConnectionId: 26,
  Hostname: 27,
  UpstreamRequestAttemptCount: 28,
  ConnectionTerminationDetails: 29,
} as const;

const SIMPLE: Record<string, number> = {
  PROTOCOL: Op.Protocol,
  RESPONSE_CODE: Op.ResponseCode,
  RESPONSE_CODE_DETAILS: Op.ResponseCodeDetails,
  RESPONSE_FLAGS: Op.ResponseFlags,
  RESPONSE_FLAGS_LONG: Op.ResponseFlagsLong,
  BYTES_RECEIVED: Op.BytesReceived,
  BYTES_SENT: Op.BytesSent,
  DURATION: Op.Duration,
  RESPONSE_DURATION: Op.ResponseDuration,
  UPSTREAM_HOST: Op.UpstreamHost,
  UPSTREAM_REMOTE_ADDRESS: Op.UpstreamHost,
  UPSTREAM_CLUSTER: Op.UpstreamCluster,
  UPSTREAM_LOCAL_ADDRESS: Op.UpstreamLocalAddress,
  UPSTREAM_TRANSPORT_FAILURE_REASON: Op.UpstreamTransportFailureReason,
  DOWNSTREAM_REMOTE_ADDRESS: Op.DownstreamRemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: Op.DownstreamRemoteAddressWithoutPort,
  DOWNSTREAM_LOCAL_ADDRESS: Op.DownstreamLocalAddress,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: Op.DownstreamLocalAddressWithoutPort,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: Op.DownstreamDirectRemoteAddress,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: Op.DownstreamDirectRemoteAddressWithoutPort,
  REQUESTED_SERVER_NAME: Op.RequestedServerName,
  ROUTE_NAME: Op.RouteName,
  CONNECTION_ID: Op.ConnectionId,
  HOSTNAME: Op.Hostname,
  UPSTREAM_REQUEST_ATTEMPT_COUNT: Op.UpstreamRequestAttemptCount,
  CONNECTION_TERMINATION_DETAILS: Op.ConnectionTerminationDetails,
};

/** Operators Envoy has that nuncio does not (a config error saying so, rather than "unknown"). */
const NOT_SUPPORTED = new Set([
  "REQUEST_DURATION",
  "REQUEST_TX_DURATION",
  "RESPONSE_TX_DURATION",
  "DYNAMIC_METADATA",
  "CLUSTER_METADATA",
  "UPSTREAM_METADATA",
  "FILTER_STATE",
  "UPSTREAM_FILTER_STATE",
  "START_TIME_LOCAL",
  "EMIT_TIME",
  "REQ_WITHOUT_QUERY",
  "GRPC_STATUS",
  "GRPC_STATUS_NUMBER",
  "UPSTREAM_WIRE_BYTES_SENT",
  "UPSTREAM_WIRE_BYTES_RECEIVED",
  "DOWNSTREAM_PEER_URI_SAN",
  "DOWNSTREAM_TLS_VERSION",
  "DOWNSTREAM_PEER_SUBJECT",
  "DOWNSTREAM_LOCAL_PORT",
  "DOWNSTREAM_REMOTE_PORT",
  "VIRTUAL_CLUSTER_NAME",
  "ACCESS_LOG_TYPE",
  "UNIQUE_ID",
  "TRACE_ID",
  "STREAM_ID",
  "LOCAL_REPLY_BODY",
]);

// Header sources of %REQ(...)%: a header or a StreamInfo field.
const H_HEADER = 0, H_METHOD = 1, H_PATH = 2, H_AUTHORITY = 3, H_SCHEME = 4, H_ORIGINAL_PATH = 5;
const H_STATUS = 6, H_HOST = 7;

/** One parsed operator. */
export interface Operator {
  readonly kind: number;
  /** Lowercase header name (REQ/RESP/TRAILER). */
  readonly header: string;
  readonly headerSource: number;
  /** Alternative header after "?" ("" when none). */
  readonly alt: string;
  readonly altSource: number;
  /** Truncation length for :Z (0 = none). */
  readonly maxLength: number;
  /** Compiled %START_TIME(...)% pattern (undefined = ISO 8601 with milliseconds). */
  readonly time: TimeFormat | undefined;
  /** Constant computed at config time (%HOSTNAME%). */
  readonly constant: string | null;
}

/** A parsed format string: literal strings and operators in order. */
export type FormatPart = string | Operator;

function reqSource(h: string): number {
  switch (h) {
    case ":method":
      return H_METHOD;
    case ":path":
      return H_PATH;
    case ":authority":
      return H_AUTHORITY;
    case ":scheme":
      return H_SCHEME;
    case "x-envoy-original-path":
      return H_ORIGINAL_PATH;
    case "host":
      return H_HOST;
    default:
      return H_HEADER;
  }
}

const COMMAND = /^%([A-Z0-9_]+)(\(([^)]*)\))?(:(\d+))?%/;
let hostnameCache: string | null | undefined;

function hostname(): string | null {
  if (hostnameCache === undefined) {
    try {
      hostnameCache = Deno.hostname();
    } catch {
      hostnameCache = null;
    }
  }
  return hostnameCache;
}

function op(kind: number, extra: Partial<Operator> = {}): Operator {
  return {
    kind,
    header: "",
    headerSource: H_HEADER,
    alt: "",
    altSource: H_HEADER,
    maxLength: 0,
    time: undefined,
    constant: null,
    ...extra,
  };
}

/** Parses an access log format string; throws an Error naming the bad operator (config time). */
export function parseFormat(format: string): FormatPart[] {
  const parts: FormatPart[] = [];
  let lit = "";
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf("%", i);
    if (pct < 0) {
      lit += format.slice(i);
      break;
    }
    lit += format.slice(i, pct);
    if (format[pct + 1] === "%") {
      lit += "%";
      i = pct + 2;
      continue;
    }
    const m = COMMAND.exec(format.slice(pct));
    if (!m) throw new Error(`Invalid access log format: no valid command operator at position ${pct}`);
    if (lit) parts.push(lit);
    lit = "";
    parts.push(parseOperator(m[1], m[3], m[5] !== undefined ? Number(m[5]) : 0, m[2] !== undefined));
    i = pct + m[0].length;
  }
  if (lit) parts.push(lit);
  return parts;
}

function parseOperator(name: string, arg: string | undefined, maxLength: number, hasArg: boolean): Operator {
  if (name === "REQ" || name === "RESP" || name === "TRAILER" || name === "RESPONSE_TRAILER") {
    if (!arg) throw new Error(`Invalid access log format: %${name}% needs a header name, e.g. %${name}(X)%`);
    const [main, alt, more] = arg.toLowerCase().split("?");
    if (more !== undefined || !main || alt === "") {
      throw new Error(`Invalid access log format: bad header alternative "${arg}" in %${name}%`);
    }
    const kind = name === "REQ" ? Op.Req : name === "RESP" ? Op.Resp : Op.Trailer;
    const src = (
      h: string,
    ) => (kind === Op.Req ? reqSource(h) : kind === Op.Resp && h === ":status" ? H_STATUS : H_HEADER);
    return op(kind, {
      header: main,
      headerSource: src(main),
      alt: alt ?? "",
      altSource: alt ? src(alt) : H_HEADER,
      maxLength,
    });
  }
  if (maxLength) {
    throw new Error(`Invalid access log format: %${name}% does not take a length (:${maxLength})`);
  }
  if (name === "START_TIME") return op(Op.StartTime, { time: arg ? new TimeFormat(arg) : undefined });
  if (hasArg) throw new Error(`Invalid access log format: %${name}% does not take arguments`);
  if (name === "HOSTNAME") return op(Op.Hostname, { constant: hostname() });
  const kind = SIMPLE[name];
  if (kind !== undefined) return op(kind);
  if (NOT_SUPPORTED.has(name)) throw new Error(`Access log operator %${name}% is not supported by nuncio`);
  throw new Error(`Invalid access log format: unknown command operator %${name}%`);
}

function header(map: HeaderMap | undefined, name: string): string | null {
  const v = map?.get(name);
  return v === undefined || v === "" ? null : v;
}

function reqValue(info: StreamInfo, src: number, name: string): string | null {
  switch (src) {
    case H_METHOD:
      return info.method || null;
    case H_PATH:
      return info.path || null;
    case H_AUTHORITY:
      return info.authority || null;
    case H_SCHEME:
      return info.scheme || null;
    case H_ORIGINAL_PATH:
      return info.originalPath || header(info.requestHeaders, name);
    case H_HOST:
      return header(info.requestHeaders, name) ?? (info.authority || null);
    default:
      return header(info.requestHeaders, name);
  }
}

function headerOp(o: Operator, info: StreamInfo, alt: boolean): string | null {
  const name = alt ? o.alt : o.header;
  const src = alt ? o.altSource : o.headerSource;
  if (o.kind === Op.Req) return reqValue(info, src, name);
  if (o.kind === Op.Resp) {
    if (src === H_STATUS) return info.responseCode ? String(info.responseCode) : null;
    return header(info.responseHeaders, name);
  }
  return header(info.responseTrailers, name);
}

/** "1.2.3.4:80" -> "1.2.3.4"; "[::1]:80" -> "::1". */
export function stripPort(addr: string): string | null {
  if (!addr) return null;
  if (addr[0] === "[") {
    const end = addr.indexOf("]");
    return end > 0 ? addr.slice(1, end) : addr;
  }
  const c = addr.lastIndexOf(":");
  return c > 0 && addr.indexOf(":") === c ? addr.slice(0, c) : addr;
}

const LONG_FLAGS: [number, string][] = Object.entries(ResponseFlag).map(([k, bit]) => [
  bit,
  k === "OverloadManager" ? "OverloadManagerTerminated" : k,
]);

/** Envoy's long response flag names, comma-separated; "-" when none. */
export function formatResponseFlagsLong(flags: number): string {
  if (flags === 0) return "-";
  let out = "";
  for (const [bit, name] of LONG_FLAGS) if (flags & bit) out = out ? out + "," + name : name;
  return out;
}

/** Evaluates one operator: a string, a number (codes, bytes, durations, ids) or null (no value). */
export function evaluate(o: Operator, info: StreamInfo, clock: Clock): string | number | null {
  switch (o.kind) {
    case Op.StartTime:
      return o.time ? o.time.format(info.startTime) : new Date(info.startTime).toISOString();
    case Op.Req:
    case Op.Resp:
    case Op.Trailer: {
      let v = headerOp(o, info, false);
      if (v === null && o.alt) v = headerOp(o, info, true);
      return v !== null && o.maxLength > 0 && v.length > o.maxLength ? v.slice(0, o.maxLength) : v;
    }
    case Op.Protocol:
      return info.protocol || null;
    case Op.ResponseCode:
      return info.responseCode;
    case Op.ResponseCodeDetails:
      return info.responseCodeDetails || null;
    case Op.ResponseFlags:
      return formatResponseFlags(info.responseFlags);
    case Op.ResponseFlagsLong:
      return formatResponseFlagsLong(info.responseFlags);
    case Op.BytesReceived:
      return info.bytesReceived;
    case Op.BytesSent:
      return info.bytesSent;
    case Op.Duration:
      return Math.floor(info.durationMs(clock.monotonic()));
    case Op.ResponseDuration:
      return info.firstUpstreamRxMono ? Math.floor(info.firstUpstreamRxMono - info.startMono) : null;
    case Op.UpstreamHost:
      return info.upstreamHost || null;
    case Op.UpstreamCluster:
      return info.upstreamCluster || null;
    case Op.UpstreamLocalAddress:
      return info.upstreamLocalAddress || null;
    case Op.UpstreamTransportFailureReason:
      return info.upstreamTransportFailureReason || null;
    case Op.DownstreamRemoteAddress:
      return info.downstreamRemoteAddress || null;
    case Op.DownstreamRemoteAddressWithoutPort:
      return stripPort(info.downstreamRemoteAddress);
    case Op.DownstreamLocalAddress:
      return info.downstreamLocalAddress || null;
    case Op.DownstreamLocalAddressWithoutPort:
      return stripPort(info.downstreamLocalAddress);
    case Op.DownstreamDirectRemoteAddress:
      return info.downstreamDirectRemoteAddress || null;
    case Op.DownstreamDirectRemoteAddressWithoutPort:
      return stripPort(info.downstreamDirectRemoteAddress);
    case Op.RequestedServerName:
      return info.requestedServerName || null;
    case Op.RouteName:
      return info.routeName || null;
    case Op.ConnectionId:
      return info.connectionId;
    case Op.Hostname:
      return o.constant;
    case Op.UpstreamRequestAttemptCount:
      return info.attemptCount;
    case Op.ConnectionTerminationDetails:
      return info.connectionTerminationDetails || null;
    default:
      return null;
  }
}
