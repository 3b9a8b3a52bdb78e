/**
 * Evaluation of Envoy's access log command operators (%REQ(X?Y):Z%, %RESPONSE_CODE%, ...) against a
 * StreamInfo: one switch per operator, no per-entry closures. Parsing lives in format_parser.ts.
 */
import type { Clock } from "../common/clock.ts";
import { formatResponseFlags, ResponseFlag } from "../common/response_flags.ts";
import type { StreamInfo } from "../common/stream_info.ts";
import type { CertificateFacts } from "../common/tls_info.ts";
import type { HeaderMap } from "../http/headers.ts";
import type { TimeFormat } from "./strftime.ts";

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
  DownstreamTlsVersion: 30,
  DownstreamTlsCipher: 31,
  DownstreamTlsSessionId: 32,
  /** DOWNSTREAM_LOCAL_* and DOWNSTREAM_PEER_* read `certField` of the local or the peer certificate. */
  DownstreamLocalCert: 33,
  DownstreamPeerCert: 34,
  DownstreamLocalPort: 35,
  DownstreamRemotePort: 36,
} as const;

/** Which certificate fact a DownstreamLocalCert / DownstreamPeerCert operator prints. */
export const CertField = {
  UriSan: 0,
  DnsSan: 1,
  IpSan: 2,
  Subject: 3,
  Issuer: 4,
  Serial: 5,
  Fingerprint256: 6,
  Fingerprint1: 7,
  Cert: 8,
  ValidFrom: 9,
  ValidTo: 10,
} as const;

/** Where a %REQ/RESP/TRAILER(...)% value comes from: a header map or a StreamInfo field. */
export const HeaderSource = {
  Header: 0,
  Method: 1,
  Path: 2,
  Authority: 3,
  Scheme: 4,
  OriginalPath: 5,
  Status: 6,
  Host: 7,
} as const;

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
  /** CertField of DownstreamLocalCert / DownstreamPeerCert (0 otherwise). */
  readonly certField: number;
}

/** A parsed format string: literal strings and operators in order. */
export type FormatPart = string | Operator;

/**
 * True when `parts` print a fact only the ClientHello or the TLS session shows (%REQUESTED_SERVER_NAME%,
 * %DOWNSTREAM_TLS_VERSION|CIPHER|SESSION_ID%): a listener must then inspect connections rather than use
 * Deno's TLS listener, which exposes only ALPN.
 */
export function usesTlsFacts(parts: readonly FormatPart[]): boolean {
  return parts.some((p) =>
    typeof p !== "string" &&
    (p.kind === Op.RequestedServerName || p.kind === Op.DownstreamTlsVersion ||
      p.kind === Op.DownstreamTlsCipher || p.kind === Op.DownstreamTlsSessionId)
  );
}

function header(map: HeaderMap | undefined, name: string): string | null {
  const v = map?.get(name);
  return v === undefined || v === "" ? null : v;
}

function reqValue(info: StreamInfo, src: number, name: string): string | null {
  switch (src) {
    case HeaderSource.Method:
      return info.method || null;
    case HeaderSource.Path:
      return info.path || null;
    case HeaderSource.Authority:
      return info.authority || null;
    case HeaderSource.Scheme:
      return info.scheme || null;
    case HeaderSource.OriginalPath:
      return info.originalPath || header(info.requestHeaders, name);
    case HeaderSource.Host:
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
    if (src === HeaderSource.Status) return info.responseCode ? String(info.responseCode) : null;
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

/** "1.2.3.4:80" -> 80; null without a port. */
function portOf(addr: string): number | null {
  const c = addr.lastIndexOf(":");
  if (c < 0 || addr.indexOf("]", c) >= 0) return null;
  const p = Number(addr.slice(c + 1));
  return Number.isInteger(p) ? p : null;
}

function certValue(o: Operator, c: CertificateFacts | null | undefined): string | null {
  if (!c) return null;
  switch (o.certField) {
    case CertField.UriSan:
      return c.uriSans || null;
    case CertField.DnsSan:
      return c.dnsSans || null;
    case CertField.IpSan:
      return c.ipSans || null;
    case CertField.Subject:
      return c.subject || null;
    case CertField.Issuer:
      return c.issuer || null;
    case CertField.Serial:
      return c.serial || null;
    case CertField.Fingerprint256:
      return c.fingerprint256 || null;
    case CertField.Fingerprint1:
      return c.fingerprint1 || null;
    case CertField.Cert:
      return c.urlEncodedPem || null;
    default: {
      const t = o.certField === CertField.ValidFrom ? c.validFrom : c.validTo;
      return o.time ? o.time.format(t) : new Date(t).toISOString();
    }
  }
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
    case Op.DownstreamTlsVersion:
      return info.downstreamTls?.version || null;
    case Op.DownstreamTlsCipher:
      return info.downstreamTls?.cipher || null;
    case Op.DownstreamTlsSessionId:
      return info.downstreamTls?.sessionId || null;
    case Op.DownstreamLocalCert:
      return certValue(o, info.downstreamTls?.local);
    case Op.DownstreamPeerCert:
      return certValue(o, info.downstreamTls?.peer);
    case Op.DownstreamLocalPort:
      return portOf(info.downstreamLocalAddress);
    case Op.DownstreamRemotePort:
      return portOf(info.downstreamRemoteAddress);
    default:
      return null;
  }
}
