/** Per-request (or per-TCP-session) facts recorded along the pipeline and read by access loggers. */
import type { HeaderMap } from "../http/headers.ts";
import type { DownstreamTlsInfo } from "./tls_info.ts";

/** What happened to one HTTP stream or TCP connection; filled in as the request moves through the pipeline. */
export class StreamInfo {
  /** Wall-clock start, ms since epoch. */
  startTime = 0;
  /** Monotonic start, ms. */
  startMono = 0;
  /** Monotonic time the last downstream byte was sent, ms (0 until done). */
  endMono = 0;
  /** Monotonic time the first upstream response byte arrived (0 if none). */
  firstUpstreamRxMono = 0;
  /** Bitset of ResponseFlag. */
  responseFlags = 0;
  /** HTTP status sent downstream (0 when none). */
  responseCode = 0;
  /** Why this response code, e.g. "via_upstream", "route_not_found". */
  responseCodeDetails = "";
  /** Why the connection ended, when a filter ended it. */
  connectionTerminationDetails = "";
  /** Body bytes received from downstream. */
  bytesReceived = 0;
  /** Body bytes sent downstream. */
  bytesSent = 0;
  /** "HTTP/1.0", "HTTP/1.1", "HTTP/2" or "" for TCP. */
  protocol = "";
  /** "ip:port" of the downstream peer. */
  downstreamRemoteAddress = "";
  /** "ip:port" of the listener side of the downstream connection. */
  downstreamLocalAddress = "";
  /** Directly connected peer ("ip:port"), before x-forwarded-for. */
  downstreamDirectRemoteAddress = "";
  /** "ip:port" of the chosen upstream host, "" when none. */
  upstreamHost = "";
  /** Name of the upstream cluster, "" when none. */
  upstreamCluster = "";
  /** Local "ip:port" of the upstream connection. */
  upstreamLocalAddress = "";
  /** Failure reason of the upstream connection/request, if any. */
  upstreamTransportFailureReason = "";
  /** Route name from the route config, "" when unnamed. */
  routeName = "";
  /** Requested server name (SNI) of the downstream TLS connection. */
  requestedServerName = "";
  /** The downstream TLS session (shared by the connection's streams), null over plain text. */
  downstreamTls: DownstreamTlsInfo | null = null;
  /** Downstream connection id. */
  connectionId = 0;
  /** Stream id, unique per worker (0 for TCP sessions). */
  streamId = 0;
  /** Request headers as received (with :method/:path/:authority available through fields below). */
  requestHeaders: HeaderMap | undefined;
  /** Response headers as sent downstream. */
  responseHeaders: HeaderMap | undefined;
  /** Response trailers as sent downstream. */
  responseTrailers: HeaderMap | undefined;
  /** Request method. */
  method = "";
  /** Request path as received (before rewrites). */
  path = "";
  /** Original path before a rewrite (x-envoy-original-path), "" when not rewritten. */
  originalPath = "";
  /** Request authority (Host). */
  authority = "";
  /** Request scheme. */
  scheme = "";
  /** Attempt count (1 + retries). */
  attemptCount = 0;
  /** Envoy's dynamic metadata (namespace -> fields) set by filters (header_to_metadata), null when none. */
  dynamicMetadata: Record<string, Record<string, unknown>> | null = null;

  /** Envoy's debug line prefix "[C<connection>][S<stream>] " (build it only when debug logging is on). */
  logPrefix(): string {
    return `[C${this.connectionId}][S${this.streamId}] `;
  }

  /** Total duration in ms (from start to the end of the response), or until now when not finished. */
  durationMs(nowMono: number): number {
    return (this.endMono || nowMono) - this.startMono;
  }
}
