/**
 * One HTTP request/response exchange on a downstream connection (HTTP/1.1 or HTTP/2): the `ActiveStream` that
 * the connection managers create per request. It holds the stream's state, runs the HTTP filter chain (decode
 * in order, encode in reverse), implements the callbacks filters use, hands the response to the codec's
 * ResponseEncoder and records stats and the access log when the stream ends. The common path (no encoder
 * filters, nothing held) stays in this file; the rest lives beside it: stream_decode.ts (decode chain, held
 * requests), stream_encode.ts (response header handling, encoder filters, held responses),
 * stream_timeouts.ts (idle, request and max-duration timeouts) and local_reply.ts.
 */
import { Logger } from "../common/log.ts";
import type { MetadataMatchCriteria } from "../common/metadata_match.ts";
import { ResponseFlag } from "../common/response_flags.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { type TimeoutTarget, TimerEntry } from "../common/timer_wheel.ts";
import type { DownstreamConnection } from "../network/filter.ts";
import {
  DONE,
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpRequest,
  type HttpResponse,
  type LocalReplyOptions,
} from "./filter.ts";
import type { HeaderMap } from "./headers.ts";
import type { HcmConfig } from "./hcm_config.ts";
import type { RouteContext, RouteEntry } from "./routing/types.ts";
import type { ResponseEncoder } from "./response_encoder.ts";
import type { StreamDurationConfig } from "./grpc_util.ts";
import { localReplyHead } from "./h1_glue.ts";
import { decodeDataFrom, decodeHeadersFrom, decodeTrailersFrom, type HeldRequest } from "./stream_decode.ts";
import {
  encodeDataChain,
  encodeHeadersChain,
  encodeTrailersChain,
  type HeldResponse,
  sendHeaders,
  sendTrailers,
} from "./stream_encode.ts";
import { applyStreamDuration, startStreamTimeouts, streamTimedOut } from "./stream_timeouts.ts";
import { sendLocalReply } from "./local_reply.ts";
import { DEBUG_HEADER, traceFilters } from "./debug_header.ts";
import type { HcmTracing } from "../tracing/http_tracing.ts";
import type { Span } from "../tracing/types.ts";

const log = new Logger("http");
let nextStreamId = 0;

/** A request in flight on an HTTP/1.1 connection or an HTTP/2 stream. */
export class ActiveStream implements HttpFilterCallbacks, TimeoutTarget {
  readonly streamInfo = new StreamInfo();
  readonly filters: HttpFilter[] = [];
  remoteIp = "";
  internal = false;
  responseStarted = false;
  /** True once the response was fully written (or the stream was reset). */
  responseDone = false;
  /** True once the whole request body went through decodeData (endStream seen). */
  requestDone = false;
  /** Set when the stream must end the connection (reset, HTTP/1.0 close-delimited body, errors). */
  closeConnection = false;
  /** True after the downstream went away or resetStream was called. */
  reset = false;
  /** Whether this request is an accepted upgrade (101 seen). */
  upgraded = false;
  #route: RouteEntry | null | undefined;
  /** @internal The request a decoder filter holds (stream_decode.ts); null until one first does. */
  decHold: HeldRequest | null = null;
  /** @internal setDecoderBufferLimit's value (0: the connection's); bounds held requests and responses. */
  bufferLimit = 0;
  #routeCtx: RouteContext | undefined;
  /** @internal The response an encoder filter holds (stream_encode.ts); null until one first does. */
  encHold: HeldResponse | null = null;
  /** @internal encodeHeaders was called (the response may still be held by a filter). */
  encStarted = false;
  /** Some filter has an encode* method (else the response goes straight to the codec). */
  #encFilters = false;
  #doneResolve: (() => void) | undefined;
  /** Resolves when the response is complete or the stream reset. */
  readonly done: Promise<void>;
  /** @internal The stream's entry in the timer wheel (stream_timeouts.ts). */
  readonly timer = new TimerEntry(this);
  /** @internal Monotonic ms of the last activity (stream idle timeout). */
  lastActivity = 0;
  /** @internal Monotonic deadline of the request timeout, 0 when none. */
  deadlineRequest = 0;
  /** @internal Monotonic deadline of the max stream duration, 0 when none. */
  deadlineDuration = 0;
  /** @internal Resolves `headersSent` (set by waitHeaders). */
  headResolve: (() => void) | undefined;
  /** Resolves when response headers went downstream (used for upgrades). */
  headersSent: Promise<void> | undefined;
  /** The request's span (HCM tracing configured and a span started), else null. */
  activeSpan: Span | null = null;
  /** The route decorator's operation to return in x-envoy-decorator-operation (tracing, ingress), else "". */
  decoratedOperation = "";

  constructor(
    readonly encoder: ResponseEncoder,
    readonly cfg: HcmConfig,
    readonly down: DownstreamConnection,
    readonly request: HttpRequest,
    readonly versionMinor: 0 | 1,
    readonly keepAlive: boolean,
  ) {
    this.done = new Promise<void>((r) => this.#doneResolve = r);
    const info = this.streamInfo;
    const clock = cfg.clock;
    info.startTime = clock.now();
    info.startMono = clock.monotonic();
    info.protocol = request.protocol;
    info.connectionId = down.id;
    info.streamId = ++nextStreamId;
    info.downstreamLocalAddress = down.localAddress;
    info.downstreamDirectRemoteAddress = down.remoteAddress;
    info.downstreamRemoteAddress = down.remoteAddress;
    info.requestedServerName = down.serverName;
    info.downstreamTls = down.tls ?? null;
    info.method = request.method;
    info.path = request.path;
    info.authority = request.authority;
    info.scheme = request.scheme;
    info.requestHeaders = request.headers;
    startStreamTimeouts(this);
    if (log.enabled("debug")) {
      log.debug(
        `${info.logPrefix()}new stream: ${request.method} ${request.path} ${request.protocol} host '${request.authority}'`,
      );
    }
  }

  /** Creates the filter instances of the chain. */
  createFilters(): void {
    const f = this.cfg.filters;
    let enc = false;
    for (let i = 0; i < f.length; i++) {
      const x = f[i].createFilter(this);
      this.filters.push(x);
      if (x.encodeHeaders || x.encodeData || x.encodeTrailers) enc = true;
    }
    // x-nuncio-debug (debug_header.ts): internal requests only; one header lookup for those, nothing otherwise
    if (this.internal && this.request.headers.get(DEBUG_HEADER) === "1") enc = traceFilters(this);
    this.#encFilters = enc;
  }

  /** Notes activity for the stream idle timeout. */
  touch(): void {
    this.lastActivity = this.cfg.timers.now();
  }

  onTimeout(_kind: number): void {
    streamTimedOut(this);
  }

  /** @internal Tells filters the stream is over (they abort upstream work). */
  abortFilters(): void {
    for (const f of this.filters) {
      try {
        f.onDestroy?.();
      } catch {
        // a filter's cleanup failing must not take the connection down
      }
    }
    this.filters.length = 0;
  }

  // ---- decode path (driven by the connection) ----

  /** Runs decodeHeaders through the chain; undefined when no filter had to wait, else a promise of the rest. */
  decodeHeaders(endStream: boolean): Promise<void> | undefined {
    if (endStream) this.#markRequestDone();
    return decodeHeadersFrom(this, 0, endStream);
  }

  /**
   * Runs decodeData through the chain (`data` is only valid until it finished); undefined when no filter had
   * to wait, else a promise of the rest.
   */
  decodeData(data: Uint8Array, endStream: boolean): Promise<void> | undefined {
    this.streamInfo.bytesReceived += data.length;
    if (endStream) this.#markRequestDone();
    return decodeDataFrom(this, 0, data, endStream);
  }

  /** Runs decodeTrailers through the chain. */
  decodeTrailers(trailers: HeaderMap): Promise<void> {
    this.#markRequestDone();
    return decodeTrailersFrom(this, 0, trailers);
  }

  setDecoderBufferLimit(bytes: number): void {
    this.bufferLimit = bytes;
  }

  #markRequestDone(): void {
    this.requestDone = true;
  }

  /** The downstream closed or failed before the stream ended. */
  downstreamReset(): void {
    if (this.responseDone) return;
    this.cfg.stats.downstream_rq_rx_reset.inc();
    this.streamInfo.responseFlags |= ResponseFlag.DownstreamConnectionTermination;
    if (!this.streamInfo.responseCodeDetails) {
      this.streamInfo.responseCodeDetails = "downstream_remote_disconnect";
    }
    this.abortFilters();
    this.closeConnection = true;
    this.reset = true;
    this.finishResponse();
  }

  // ---- HttpFilterCallbacks ----

  get upgradeType(): string {
    return this.encoder.upgradeType;
  }

  /** See HttpFilterCallbacks.tracing. */
  get tracing(): HcmTracing | null {
    return this.cfg.tracing;
  }

  /** See HttpFilterCallbacks.routeClusterName. */
  routeClusterName = "";
  /** See HttpFilterCallbacks.routeMetadataMatch. */
  routeMetadataMatch: MetadataMatchCriteria | null = null;

  route(): RouteEntry | null {
    if (this.#route === undefined) {
      const r = this.#route = this.cfg.routeProvider.table.match(this.request);
      if (log.enabled("debug")) this.#logRoute(r);
      if (r) {
        this.streamInfo.routeName = r.name;
        if (r.kind === "route") {
          // Envoy resolves the cluster with the route, so local replies before the router log it too;
          // %UPSTREAM_CLUSTER% names only a cluster that exists (cluster_header values come from the client)
          const random = Math.random();
          const name = this.routeClusterName = r.selectCluster(this.request, random);
          this.routeMetadataMatch = r.metadataMatchFor?.(random) ?? null;
          if (this.cfg.clusterManager.get(name) !== undefined) this.streamInfo.upstreamCluster = name;
          const msd = (r.config as { max_stream_duration?: StreamDurationConfig }).max_stream_duration;
          if (msd !== undefined) applyStreamDuration(this, msd);
        }
      }
    }
    return this.#route;
  }

  #logRoute(r: RouteEntry | null): void {
    const p = this.streamInfo.logPrefix();
    if (r === null) {
      log.debug(`${p}no route match for URL '${this.request.path}' (host '${this.request.authority}')`);
      return;
    }
    log.debug(
      `${p}virtual host '${r.virtualHostName}' route '${r.name}' (${r.matchDescription}) ${r.kind} ` +
        `matched URL '${this.request.path}'`,
    );
  }

  clearRouteCache(): void {
    this.#route = undefined;
    this.routeClusterName = "";
    this.routeMetadataMatch = null;
    this.streamInfo.upstreamCluster = "";
  }

  /** The header formatter context for this stream. */
  routeContext(): RouteContext {
    if (!this.#routeCtx) {
      this.#routeCtx = {
        remoteIp: this.remoteIp,
        remoteAddress: this.streamInfo.downstreamRemoteAddress,
        localAddress: this.down.localAddress,
        originalDst: this.down.localAddressRestored ? this.down.localAddress : undefined,
        upstreamHost: "",
        protocol: this.request.protocol,
        requestId: this.request.headers.get("x-request-id") ?? "",
      };
    }
    this.#routeCtx.upstreamHost = this.streamInfo.upstreamHost;
    return this.#routeCtx;
  }

  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): Promise<void> {
    return sendLocalReply(this, status, body, opts);
  }

  /**
   * Sends response headers through the encoder filters. `knownLength` lets local replies set
   * content-length without a header lookup. A filter returning StopIteration or StopIterationAndBuffer (with
   * more to come) holds the response: the stream buffers the body until that filter returns Continue from
   * encodeData (end of stream) or encodeTrailers, then the remaining filters and the codec get it all.
   */
  encodeHeaders(res: HttpResponse, endStream: boolean, knownLength = -1): Promise<void> {
    if (this.encStarted || this.reset) return DONE;
    this.encStarted = true;
    this.touch();
    if (!this.#encFilters) return sendHeaders(this, res, endStream, knownLength);
    return encodeHeadersChain(this, res, endStream, knownLength);
  }

  encodeData(data: Uint8Array, endStream: boolean): Promise<void> {
    if (this.responseDone) return DONE;
    if (!this.responseStarted && (this.encHold === null || this.encHold.index < 0)) {
      throw new Error("encodeData before encodeHeaders");
    }
    this.touch();
    if (!this.#encFilters) {
      this.streamInfo.bytesSent += data.length;
      return this.encoder.encodeData(this, data, endStream);
    }
    return encodeDataChain(this, data, endStream);
  }

  encodeTrailers(trailers: HeaderMap): Promise<void> {
    if (!this.#encFilters) return this.responseDone ? DONE : sendTrailers(this, trailers);
    return encodeTrailersChain(this, trailers);
  }

  resetStream(): void {
    if (this.responseDone) return;
    this.cfg.stats.downstream_rq_tx_reset.inc();
    this.reset = true;
    this.closeConnection = true;
    this.abortFilters();
    this.finishResponse();
    this.encoder.resetStream(this);
  }

  /** A promise resolved when response headers are written (created on demand for upgrades). */
  waitHeaders(): Promise<void> {
    if (this.responseStarted) return Promise.resolve();
    if (!this.headersSent) this.headersSent = new Promise<void>((r) => this.headResolve = r);
    return this.headersSent;
  }

  /** Ends the stream (called by the encoder once the response is out): stats, access log, wakes the connection. */
  finishResponse(): void {
    if (this.responseDone) return;
    this.responseDone = true;
    const cfg = this.cfg;
    cfg.timers.disarm(this.timer);
    this.headResolve?.();
    // Filters always see onDestroy (the router aborts an unfinished upstream request here)
    this.abortFilters();
    const info = this.streamInfo;
    const now = cfg.clock.monotonic();
    info.endMono = now;
    const stats = cfg.stats;
    stats.downstream_rq_active.dec();
    stats.downstream_rq_completed.inc();
    if (info.responseCode >= 100 && info.responseCode < 600) {
      stats.downstream_rq_xx[Math.floor(info.responseCode / 100) - 1].inc();
    }
    stats.downstream_rq_time.record(now - info.startMono);
    if (this.upgraded) stats.downstream_cx_upgrades_active.dec();
    const span = this.activeSpan;
    if (span !== null) cfg.tracing!.finishDownstream(span, this, cfg.clock.now());
    const logs = cfg.accessLogs;
    for (let i = 0; i < logs.length; i++) logs[i].log(info);
    if (!this.requestDone) this.closeConnection = true;
    this.#doneResolve!();
  }
}

export { localReplyHead };
