/**
 * Parses access log format strings into literal strings and operators (config time). Unknown
 * operators are config errors; operators Envoy has but nuncio does not say "not supported".
 */
import { CertField, type FormatPart, HeaderSource, Op, type Operator } from "./operators.ts";
import { TimeFormat } from "./strftime.ts";

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
  DOWNSTREAM_TLS_VERSION: Op.DownstreamTlsVersion,
  DOWNSTREAM_TLS_CIPHER: Op.DownstreamTlsCipher,
  DOWNSTREAM_TLS_SESSION_ID: Op.DownstreamTlsSessionId,
  DOWNSTREAM_LOCAL_PORT: Op.DownstreamLocalPort,
  DOWNSTREAM_REMOTE_PORT: Op.DownstreamRemotePort,
};

/** %DOWNSTREAM_LOCAL_*% (the certificate served) and %DOWNSTREAM_PEER_*% (the client's): kind and field. */
const CERT_OPS: Record<string, [number, number]> = {
  DOWNSTREAM_LOCAL_URI_SAN: [Op.DownstreamLocalCert, CertField.UriSan],
  DOWNSTREAM_LOCAL_DNS_SAN: [Op.DownstreamLocalCert, CertField.DnsSan],
  DOWNSTREAM_LOCAL_IP_SAN: [Op.DownstreamLocalCert, CertField.IpSan],
  DOWNSTREAM_LOCAL_SUBJECT: [Op.DownstreamLocalCert, CertField.Subject],
  DOWNSTREAM_PEER_URI_SAN: [Op.DownstreamPeerCert, CertField.UriSan],
  DOWNSTREAM_PEER_DNS_SAN: [Op.DownstreamPeerCert, CertField.DnsSan],
  DOWNSTREAM_PEER_IP_SAN: [Op.DownstreamPeerCert, CertField.IpSan],
  DOWNSTREAM_PEER_SUBJECT: [Op.DownstreamPeerCert, CertField.Subject],
  DOWNSTREAM_PEER_ISSUER: [Op.DownstreamPeerCert, CertField.Issuer],
  DOWNSTREAM_PEER_SERIAL: [Op.DownstreamPeerCert, CertField.Serial],
  DOWNSTREAM_PEER_FINGERPRINT_256: [Op.DownstreamPeerCert, CertField.Fingerprint256],
  DOWNSTREAM_PEER_FINGERPRINT_1: [Op.DownstreamPeerCert, CertField.Fingerprint1],
  DOWNSTREAM_PEER_CERT: [Op.DownstreamPeerCert, CertField.Cert],
  DOWNSTREAM_PEER_CERT_V_START: [Op.DownstreamPeerCert, CertField.ValidFrom],
  DOWNSTREAM_PEER_CERT_V_END: [Op.DownstreamPeerCert, CertField.ValidTo],
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
  "DOWNSTREAM_LOCAL_EMAIL_SAN",
  "DOWNSTREAM_LOCAL_OTHERNAME_SAN",
  "DOWNSTREAM_PEER_EMAIL_SAN",
  "DOWNSTREAM_PEER_OTHERNAME_SAN",
  "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256",
  "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1",
  "DOWNSTREAM_PEER_CHAIN_SERIALS",
  "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
  "UPSTREAM_TLS_VERSION",
  "UPSTREAM_TLS_CIPHER",
  "UPSTREAM_TLS_SESSION_ID",
  "UPSTREAM_PEER_URI_SAN",
  "UPSTREAM_PEER_DNS_SAN",
  "UPSTREAM_PEER_IP_SAN",
  "UPSTREAM_PEER_SUBJECT",
  "UPSTREAM_PEER_ISSUER",
  "UPSTREAM_PEER_CERT",
  "UPSTREAM_PEER_CERT_V_START",
  "UPSTREAM_PEER_CERT_V_END",
  "UPSTREAM_LOCAL_URI_SAN",
  "UPSTREAM_LOCAL_DNS_SAN",
  "UPSTREAM_LOCAL_IP_SAN",
  "UPSTREAM_LOCAL_SUBJECT",
  "UPSTREAM_LOCAL_PORT",
  "UPSTREAM_REMOTE_PORT",
  "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
  "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT",
  "UPSTREAM_CONNECTION_ID",
  "UPSTREAM_CLUSTER_RAW",
  "DOWNSTREAM_DIRECT_LOCAL_ADDRESS",
  "DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT",
  "DOWNSTREAM_DIRECT_REMOTE_PORT",
  "DOWNSTREAM_DIRECT_LOCAL_PORT",
  "DOWNSTREAM_HANDSHAKE_DURATION",
  "DOWNSTREAM_WIRE_BYTES_SENT",
  "DOWNSTREAM_WIRE_BYTES_RECEIVED",
  "DOWNSTREAM_HEADER_BYTES_SENT",
  "DOWNSTREAM_HEADER_BYTES_RECEIVED",
  "UPSTREAM_HEADER_BYTES_SENT",
  "UPSTREAM_HEADER_BYTES_RECEIVED",
  "ROUTE_NAME_PREFIX",
  "RESPONSE_CODE_DETAILS_DETAIL",
  "UPSTREAM_LOCAL_CLOSE_REASON",
  "UPSTREAM_DETECTED_CLOSE_TYPE",
  "DOWNSTREAM_DETECTED_CLOSE_TYPE",
  "UPSTREAM_HOST_NAME",
  "UPSTREAM_HOST_NAME_WITHOUT_PORT",
  "REQUEST_HEADERS_BYTES",
  "REQ_METADATA",
  "METADATA",
  "CEL",
  "PATH",
  "ENVIRONMENT",
  "COMMON_DURATION",
  "CUSTOM_FLAGS",
  "UPSTREAM_PEER_FINGERPRINT_256",
  "UPSTREAM_PEER_FINGERPRINT_1",
  "UPSTREAM_PEER_SERIAL",
  "QUERY_PARAM",
  "VIRTUAL_CLUSTER_NAME",
  "ACCESS_LOG_TYPE",
  "UNIQUE_ID",
  "TRACE_ID",
  "STREAM_ID",
  "LOCAL_REPLY_BODY",
]);

function reqSource(h: string): number {
  switch (h) {
    case ":method":
      return HeaderSource.Method;
    case ":path":
      return HeaderSource.Path;
    case ":authority":
      return HeaderSource.Authority;
    case ":scheme":
      return HeaderSource.Scheme;
    case "x-envoy-original-path":
      return HeaderSource.OriginalPath;
    case "host":
      return HeaderSource.Host;
    default:
      return HeaderSource.Header;
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
    headerSource: HeaderSource.Header,
    alt: "",
    altSource: HeaderSource.Header,
    maxLength: 0,
    time: undefined,
    constant: null,
    certField: 0,
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
    ) => (kind === Op.Req
      ? reqSource(h)
      : kind === Op.Resp && h === ":status"
      ? HeaderSource.Status
      : HeaderSource.Header);
    return op(kind, {
      header: main,
      headerSource: src(main),
      alt: alt ?? "",
      altSource: alt ? src(alt) : HeaderSource.Header,
      maxLength,
    });
  }
  if (maxLength) {
    throw new Error(`Invalid access log format: %${name}% does not take a length (:${maxLength})`);
  }
  if (name === "START_TIME") return op(Op.StartTime, { time: arg ? new TimeFormat(arg) : undefined });
  const cert = CERT_OPS[name];
  if (cert !== undefined) {
    const timed = cert[1] === CertField.ValidFrom || cert[1] === CertField.ValidTo;
    if (hasArg && !timed) throw new Error(`Invalid access log format: %${name}% does not take arguments`);
    return op(cert[0], { certField: cert[1], time: timed && arg ? new TimeFormat(arg) : undefined });
  }
  if (hasArg) throw new Error(`Invalid access log format: %${name}% does not take arguments`);
  if (name === "HOSTNAME") return op(Op.Hostname, { constant: hostname() });
  const kind = SIMPLE[name];
  if (kind !== undefined) return op(kind);
  if (NOT_SUPPORTED.has(name)) throw new Error(`Access log operator %${name}% is not supported by nuncio`);
  throw new Error(`Invalid access log format: unknown command operator %${name}%`);
}
