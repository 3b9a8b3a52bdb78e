/**
 * Parses access log format strings into literal strings and operators (config time). Unknown
 * operators are config errors; operators Envoy has but nuncio does not say "not supported".
 */
import { type FormatPart, HeaderSource, Op, type Operator } from "./operators.ts";
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
  if (hasArg) throw new Error(`Invalid access log format: %${name}% does not take arguments`);
  if (name === "HOSTNAME") return op(Op.Hostname, { constant: hostname() });
  const kind = SIMPLE[name];
  if (kind !== undefined) return op(kind);
  if (NOT_SUPPORTED.has(name)) throw new Error(`Access log operator %${name}% is not supported by nuncio`);
  throw new Error(`Invalid access log format: unknown command operator %${name}%`);
}
