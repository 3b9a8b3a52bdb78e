/**
 * One HTTP request/response exchange on a downstream connection (HTTP/1.1 or HTTP/2): runs the HTTP filter
 * chain (decode in order, encode in reverse), implements the callbacks filters use, hands the response to the
 * codec's ResponseEncoder and records stats and the access log when the stream ends.
 */
import { ResponseFlag } from "../common/response_flags.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { type TimeoutTarget, TimerEntry } from "../common/timer_wheel.ts";
import type { DownstreamConnection } from "../network/filter.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  HttpFilterStatus,
  type HttpRequest,
  type HttpResponse,
  type LocalReplyOptions,
} from "./filter.ts";
import { HeaderMap } from "./headers.ts";
import type { HcmConfig } from "./hcm_config.ts";
import type { RouteContext, RouteEntry } from "./routing/types.ts";
import type { ResponseEncoder } from "./response_encoder.ts";
import { localReplyHead } from "./h1_glue.ts";
import {
  encodeGrpcMessage,
  GrpcStatus,
  httpToGrpcStatus,
  isGrpcRequest,
  type StreamDurationConfig,
  streamDurationMs,
} from "./grpc_util.ts";

const EMPTY = new Uint8Array(0);
const RESOLVED = Promise.resolve();
const STREAM_IDLE = 1;
const REQUEST_TIMEOUT = 2;
const MAX_DURATION = 3;

/** True for the hop-by-hop response headers never forwarded downstream (lowercase names). */
function isHopByHop(n: string): boolean {
  switch (n.length) {
    case 7:
      return n === "upgrade";
    case 10:
      return n === "connection" || n === "keep-alive";
    case 16:
      return n === "proxy-connection";
    case 17:
      return n === "transfer-encoding";
    default:
      return false;
  }
}

/** Drops the hop-by-hop lines from `h` in one pass, in place. */
function stripHopByHop(h: HeaderMap): void {
  const names = h.names;
  const values = h.values;
  const n = names.length;
  let w = 0;
  for (let r = 0; r < n; r++) {
    const name = names[r];
    if (isHopByHop(name)) continue;
    if (w !== r) {
      names[w] = name;
      values[w] = values[r];
    }
    w++;
  }
  if (w !== n) names.length = values.length = w;
}

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
  /** Index of the filter holding the request with StopIterationAndBuffer, -1 when none. */
  #held = -1;
  #buffered: Uint8Array[] | null = null;
  #bufferedBytes = 0;
  #bufferLimit = 0;
  #routeCtx: RouteContext | undefined;
  /** Index of the encoder filter holding the response (encodeHeaders stopped), -1 when none. */
  #encHeld = -1;
  #encHead: HttpResponse | null = null;
  #encBuffered: Uint8Array[] | null = null;
  #encBytes = 0;
  /** encodeHeaders was called (the response may still be held by a filter). */
  #encStarted = false;
  /** Some filter has an encode* method (else the response goes straight to the codec). */
  #encFilters = false;
  #doneResolve: (() => void) | undefined;
  /** Resolves when the response is complete or the stream reset. */
  readonly done: Promise<void>;
  #timer = new TimerEntry(this);
  #lastActivity = 0;
  #deadlineRequest = 0;
  #deadlineDuration = 0;
  #headResolve: (() => void) | undefined;
  /** Resolves when response headers went downstream (used for upgrades). */
  headersSent: Promise<void> | undefined;

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
    info.downstreamLocalAddress = down.localAddress;
    info.downstreamDirectRemoteAddress = down.remoteAddress;
    info.downstreamRemoteAddress = down.remoteAddress;
    info.method = request.method;
    info.path = request.path;
    info.authority = request.authority;
    info.scheme = request.scheme;
    info.requestHeaders = request.headers;
    const o = cfg.opts;
    if (o.streamIdleTimeoutMs > 0 || o.requestTimeoutMs > 0 || o.maxStreamDurationMs > 0) {
      this.#lastActivity = info.startMono;
      if (o.requestTimeoutMs > 0) this.#deadlineRequest = info.startMono + o.requestTimeoutMs;
      if (o.maxStreamDurationMs > 0) this.#deadlineDuration = info.startMono + o.maxStreamDurationMs;
      this.#armTimer();
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
    this.#encFilters = enc;
  }

  /** Notes activity for the stream idle timeout. */
  touch(): void {
    this.#lastActivity = this.cfg.timers.now();
  }

  #armTimer(): void {
    const now = this.cfg.timers.now();
    let next = Infinity;
    const o = this.cfg.opts;
    if (o.streamIdleTimeoutMs > 0) next = this.#lastActivity + o.streamIdleTimeoutMs;
    if (this.#deadlineRequest && !this.requestDone) next = Math.min(next, this.#deadlineRequest);
    if (this.#deadlineDuration) next = Math.min(next, this.#deadlineDuration);
    if (next === Infinity) return;
    this.cfg.timers.arm(this.#timer, Math.max(1, next - now), 0);
  }

  onTimeout(_kind: number): void {
    if (this.responseDone) return;
    const now = this.cfg.clock.monotonic();
    const o = this.cfg.opts;
    let fired = 0;
    if (this.#deadlineDuration && now >= this.#deadlineDuration) fired = MAX_DURATION;
    else if (this.#deadlineRequest && !this.requestDone && now >= this.#deadlineRequest) {
      fired = REQUEST_TIMEOUT;
    } else if (o.streamIdleTimeoutMs > 0 && now >= this.#lastActivity + o.streamIdleTimeoutMs) {
      fired = STREAM_IDLE;
    }
    if (!fired) {
      this.#armTimer();
      return;
    }
    const stats = this.cfg.stats;
    if (fired === STREAM_IDLE) {
      stats.downstream_rq_idle_timeout.inc();
      this.streamInfo.responseFlags |= ResponseFlag.StreamIdleTimeout;
    } else if (fired === REQUEST_TIMEOUT) {
      stats.downstream_rq_timeout.inc();
    } else {
      stats.downstream_rq_max_duration_reached.inc();
      this.streamInfo.responseFlags |= ResponseFlag.UpstreamMaxStreamDurationReached;
    }
    const details = fired === STREAM_IDLE
      ? "stream_idle_timeout"
      : fired === REQUEST_TIMEOUT
      ? "request_overall_timeout"
      : "max_duration_timeout";
    this.#abortFilters();
    if (!this.responseStarted) {
      this.closeConnection = true;
      // Envoy: 408 while the request is still arriving, 504 after; gRPC callers get DEADLINE_EXCEEDED
      this.sendLocalReply(
        fired === MAX_DURATION && this.requestDone ? 504 : 408,
        fired === MAX_DURATION ? "downstream duration timeout" : "stream timeout",
        { details, grpcStatus: fired === MAX_DURATION ? GrpcStatus.DeadlineExceeded : undefined },
      ).catch(() => this.resetStream());
    } else {
      this.streamInfo.responseCodeDetails = details;
      this.resetStream();
    }
  }

  /** Tells filters the stream is over (they abort upstream work). */
  #abortFilters(): void {
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

  /** Runs decodeHeaders through the chain. */
  decodeHeaders(endStream: boolean): Promise<void> {
    if (endStream) this.#markRequestDone();
    return this.#decodeHeadersFrom(0, endStream);
  }

  async #decodeHeadersFrom(start: number, endStream: boolean): Promise<void> {
    const fs = this.filters;
    for (let i = start; i < fs.length && !this.responseDone; i++) {
      const f = fs[i];
      if (!f.decodeHeaders) continue;
      let st = f.decodeHeaders(endStream);
      if (st instanceof Promise) st = await st;
      if (st === HttpFilterStatus.StopIteration) return;
      if (st === HttpFilterStatus.StopIterationAndBuffer) {
        if (!endStream) this.#held = i;
        return;
      }
    }
  }

  /** Runs decodeData through the chain (`data` is only valid during the call). */
  decodeData(data: Uint8Array, endStream: boolean): Promise<void> {
    this.streamInfo.bytesReceived += data.length;
    if (endStream) this.#markRequestDone();
    return this.#decodeDataFrom(0, data, endStream);
  }

  async #decodeDataFrom(start: number, data: Uint8Array, endStream: boolean): Promise<void> {
    const fs = this.filters;
    const held = this.#held;
    const end = held >= 0 ? held + 1 : fs.length;
    for (let i = start; i < end && !this.responseDone; i++) {
      const f = fs[i];
      if (!f.decodeData) continue;
      let st = f.decodeData(data, endStream);
      if (st instanceof Promise) st = await st;
      if (st === HttpFilterStatus.StopIteration) return;
      if (st === HttpFilterStatus.StopIterationAndBuffer) {
        if (i === held) await this.#bufferData(data);
        return;
      }
    }
    if (held >= 0 && !this.responseDone) await this.#release(data, endStream, null);
  }

  /** Runs decodeTrailers through the chain. */
  decodeTrailers(trailers: HeaderMap): Promise<void> {
    this.#markRequestDone();
    return this.#decodeTrailersFrom(0, trailers);
  }

  async #decodeTrailersFrom(start: number, trailers: HeaderMap): Promise<void> {
    const fs = this.filters;
    const held = this.#held;
    const end = held >= 0 ? held + 1 : fs.length;
    for (let i = start; i < end && !this.responseDone; i++) {
      const f = fs[i];
      if (!f.decodeTrailers) continue;
      let st = f.decodeTrailers(trailers);
      if (st instanceof Promise) st = await st;
      if (st === HttpFilterStatus.StopIteration) return;
    }
    if (held >= 0 && !this.responseDone) await this.#release(EMPTY, false, trailers);
  }

  setDecoderBufferLimit(bytes: number): void {
    this.#bufferLimit = bytes;
  }

  /** Keeps a copy of body bytes for the holding filter; over the limit the request gets 413. */
  async #bufferData(data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    if (this.#overLimit(data.length)) return await this.#tooLarge();
    (this.#buffered ??= []).push(data.slice());
    this.#bufferedBytes += data.length;
  }

  #overLimit(more: number): boolean {
    const limit = this.#bufferLimit > 0 ? this.#bufferLimit : this.down.bufferLimitBytes;
    return this.#bufferedBytes + more > limit;
  }

  /** The held body outgrew the buffer limit: 413, as Envoy's connection manager answers. */
  async #tooLarge(): Promise<void> {
    this.#held = -1;
    this.#buffered = null;
    this.cfg.stats.downstream_rq_too_large.inc();
    this.closeConnection = true;
    await this.sendLocalReply(413, "Payload Too Large", { details: "request_payload_too_large" });
  }

  /** The holding filter let go: later filters get the headers, the buffered body (plus `last`), then trailers. */
  async #release(last: Uint8Array, endStream: boolean, trailers: HeaderMap | null): Promise<void> {
    if (this.#overLimit(last.length)) return await this.#tooLarge();
    const from = this.#held + 1;
    this.#held = -1;
    const parts = this.#buffered;
    this.#buffered = null;
    let body = last;
    if (parts) {
      body = new Uint8Array(this.#bufferedBytes + last.length);
      let off = 0;
      for (const p of parts) {
        body.set(p, off);
        off += p.length;
      }
      body.set(last, off);
    }
    this.#bufferedBytes = 0;
    await this.#decodeHeadersFrom(from, false);
    if (this.responseDone) return;
    if (this.#held >= 0) {
      // a later filter holds the request in turn: it sees the body from the start
      if (body.length > 0 || endStream) await this.#decodeDataFrom(from, body, endStream);
    } else if (body.length > 0 || (endStream && !trailers)) {
      await this.#decodeDataFrom(from, body, endStream && !trailers);
    }
    if (trailers && !this.responseDone) await this.#decodeTrailersFrom(from, trailers);
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
    this.#abortFilters();
    this.closeConnection = true;
    this.reset = true;
    this.finishResponse();
  }

  // ---- HttpFilterCallbacks ----

  get upgradeType(): string {
    return this.encoder.upgradeType;
  }

  route(): RouteEntry | null {
    if (this.#route === undefined) {
      const r = this.#route = this.cfg.routes.match(this.request);
      if (r) {
        this.streamInfo.routeName = r.name;
        if (r.kind === "route") {
          const msd = (r.config as { max_stream_duration?: StreamDurationConfig }).max_stream_duration;
          if (msd !== undefined) this.#applyStreamDuration(msd);
        }
      }
    }
    return this.#route;
  }

  /** The route's max_stream_duration (or the grpc-timeout it allows) replaces the HCM's, as Envoy does. */
  #applyStreamDuration(c: StreamDurationConfig): void {
    const ms = streamDurationMs(
      c,
      this.request.headers.get("grpc-timeout"),
      this.cfg.opts.maxStreamDurationMs,
    );
    this.#deadlineDuration = ms > 0 ? this.streamInfo.startMono + ms : 0;
    if (this.#lastActivity === 0) this.#lastActivity = this.streamInfo.startMono;
    if (!this.responseDone) this.#armTimer();
  }

  clearRouteCache(): void {
    this.#route = undefined;
  }

  /** The header formatter context for this stream. */
  routeContext(): RouteContext {
    if (!this.#routeCtx) {
      this.#routeCtx = {
        remoteIp: this.remoteIp,
        remoteAddress: this.streamInfo.downstreamRemoteAddress,
        localAddress: this.down.localAddress,
        upstreamHost: "",
        protocol: this.request.protocol,
        requestId: this.request.headers.get("x-request-id") ?? "",
      };
    }
    this.#routeCtx.upstreamHost = this.streamInfo.upstreamHost;
    return this.#routeCtx;
  }

  async sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): Promise<void> {
    if (this.responseStarted) {
      this.resetStream();
      return;
    }
    // a response held by an encoder filter is replaced by the local reply
    this.#encHeld = -1;
    this.#encHead = this.#encBuffered = null;
    this.#encStarted = false;
    const info = this.streamInfo;
    if (opts?.flags) info.responseFlags |= opts.flags;
    if (opts?.details) info.responseCodeDetails = opts.details;
    const headers = new HeaderMap();
    if (isGrpcRequest(this.request.headers)) {
      // gRPC callers get HTTP 200 with a trailers-only grpc-status (Envoy's local reply for gRPC)
      headers.addLower("content-type", "application/grpc");
      let code = opts?.grpcStatus;
      if (code === undefined) {
        const timeout = (opts?.flags ?? 0) &
          (ResponseFlag.UpstreamRequestTimeout | ResponseFlag.DurationTimeout);
        code = timeout ? GrpcStatus.DeadlineExceeded : httpToGrpcStatus(status);
      }
      headers.addLower("grpc-status", String(code));
      if (body) headers.addLower("grpc-message", encodeGrpcMessage(body));
      if (opts?.headers) { for (const [k, v] of opts.headers) headers.add(k, v); }
      await this.encodeHeaders({ status: 200, headers }, true, 0);
      return;
    }
    const bytes = body ? new TextEncoder().encode(body) : EMPTY;
    if (bytes.length > 0) headers.addLower("content-type", "text/plain");
    if (opts?.headers) { for (const [k, v] of opts.headers) headers.add(k, v); }
    // The route's response header mutations apply to local replies too (Envoy does this for
    // direct responses and redirects; the router passes them in opts.headers otherwise).
    await this.encodeHeaders({ status, headers }, bytes.length === 0, bytes.length);
    if (bytes.length > 0 && !this.responseDone) await this.encodeData(bytes, true);
  }

  /**
   * Sends response headers through the encoder filters. `knownLength` lets local replies set
   * content-length without a header lookup. A filter returning StopIteration or StopIterationAndBuffer (with
   * more to come) holds the response: the stream buffers the body until that filter returns Continue from
   * encodeData (end of stream) or encodeTrailers, then the remaining filters and the codec get it all.
   */
  encodeHeaders(res: HttpResponse, endStream: boolean, knownLength = -1): Promise<void> {
    if (this.#encStarted || this.reset) return RESOLVED;
    this.#encStarted = true;
    this.touch();
    if (!this.#encFilters) return this.#sendHeaders(res, endStream, knownLength);
    return this.#encodeHeadersSlow(res, endStream, knownLength);
  }

  async #encodeHeadersSlow(res: HttpResponse, endStream: boolean, knownLength: number): Promise<void> {
    const held = await this.#encodeHeadersFrom(this.filters.length - 1, res, endStream);
    if (held || this.responseStarted || this.reset) return;
    await this.#sendHeaders(res, endStream, knownLength);
  }

  /** Runs encodeHeaders from filter `from` down to 0; true when a filter now holds the response. */
  async #encodeHeadersFrom(from: number, res: HttpResponse, endStream: boolean): Promise<boolean> {
    const fs = this.filters;
    for (let i = from; i >= 0; i--) {
      const f = fs[i];
      if (!f.encodeHeaders) continue;
      let st = f.encodeHeaders(res, endStream);
      if (st instanceof Promise) st = await st;
      if (st !== HttpFilterStatus.Continue) {
        if (endStream) break;
        this.#encHeld = i;
        this.#encHead = res;
        return true;
      }
    }
    return false;
  }

  /** The common response header handling, then the codec. */
  #sendHeaders(res: HttpResponse, endStream: boolean, knownLength: number): Promise<void> {
    this.responseStarted = true;
    const info = this.streamInfo;
    info.responseCode = res.status;
    info.responseHeaders = res.headers;
    const h = res.headers;
    stripHopByHop(h);
    const o = this.cfg.opts;
    if (o.serverHeaderTransformation === "OVERWRITE") h.set("server", o.serverName);
    else if (o.serverHeaderTransformation === "APPEND_IF_ABSENT" && !h.has("server")) {
      h.addLower("server", o.serverName);
    }
    if (o.alwaysSetRequestIdInResponse) {
      const id = this.request.headers.get("x-request-id");
      if (id) h.set("x-request-id", id);
    }
    if (o.via) h.addLower("via", o.via);
    this.#headResolve?.();
    return this.encoder.encodeHeaders(this, res.status, h, endStream, knownLength);
  }

  encodeData(data: Uint8Array, endStream: boolean): Promise<void> {
    if (this.responseDone) return RESOLVED;
    if (!this.responseStarted && this.#encHeld < 0) throw new Error("encodeData before encodeHeaders");
    this.touch();
    if (!this.#encFilters) {
      this.streamInfo.bytesSent += data.length;
      return this.encoder.encodeData(this, data, endStream);
    }
    return this.#encodeDataSlow(data, endStream);
  }

  async #encodeDataSlow(data: Uint8Array, endStream: boolean): Promise<void> {
    const held = this.#encHeld;
    const fs = this.filters;
    for (let i = fs.length - 1; i >= 0 && i >= held; i--) {
      const f = fs[i];
      if (!f.encodeData) continue;
      let st = f.encodeData(data, endStream);
      if (st instanceof Promise) st = await st;
      if (st !== HttpFilterStatus.Continue) {
        if (i === held) return this.#encBuffer(data);
        return;
      }
    }
    if (held >= 0) return await this.#encRelease(data, endStream, null);
    this.streamInfo.bytesSent += data.length;
    await this.encoder.encodeData(this, data, endStream);
  }

  async encodeTrailers(trailers: HeaderMap): Promise<void> {
    if (this.responseDone) return;
    const fs = this.filters;
    const held = this.#encHeld;
    for (let i = fs.length - 1; i >= 0 && i >= held; i--) {
      const f = fs[i];
      if (!f.encodeTrailers) continue;
      let st = f.encodeTrailers(trailers);
      if (st instanceof Promise) st = await st;
      if (st !== HttpFilterStatus.Continue) return;
    }
    if (held >= 0) return await this.#encRelease(EMPTY, false, trailers);
    await this.#sendTrailers(trailers);
  }

  #sendTrailers(trailers: HeaderMap): Promise<void> {
    this.streamInfo.responseTrailers = trailers;
    return this.encoder.encodeTrailers(this, trailers);
  }

  /** Keeps a copy of response bytes for the holding encoder filter (bounded by the buffer limit). */
  #encBuffer(data: Uint8Array): void {
    if (data.length === 0) return;
    const limit = this.#bufferLimit > 0 ? this.#bufferLimit : this.down.bufferLimitBytes;
    if (this.#encBytes + data.length > limit) {
      // Envoy answers 500 when a buffered response outgrows the limit before its headers went out
      this.sendLocalReply(500, "Internal Server Error", { details: "response_payload_too_large" })
        .catch(() => this.resetStream());
      return;
    }
    (this.#encBuffered ??= []).push(data.slice());
    this.#encBytes += data.length;
  }

  /** The holding encoder filter let go: earlier filters and the codec get the head, the body and trailers. */
  async #encRelease(last: Uint8Array, endStream: boolean, trailers: HeaderMap | null): Promise<void> {
    const from = this.#encHeld - 1;
    const res = this.#encHead!;
    this.#encHeld = -1;
    this.#encHead = null;
    const parts = this.#encBuffered;
    this.#encBuffered = null;
    let body = last;
    if (parts) {
      body = new Uint8Array(this.#encBytes + last.length);
      let off = 0;
      for (const p of parts) {
        body.set(p, off);
        off += p.length;
      }
      body.set(last, off);
    }
    this.#encBytes = 0;
    const onlyHead = body.length === 0 && !trailers;
    if (await this.#encodeHeadersFrom(from, res, onlyHead && endStream)) {
      // a filter closer to the codec holds it in turn
      if (body.length > 0 || endStream) await this.encodeData(body, endStream);
      if (trailers) await this.encodeTrailers(trailers);
      return;
    }
    if (this.responseDone || this.reset) return;
    // the whole body is known: it goes out with content-length (HTTP/1.1 then drops trailers, as Envoy does)
    await this.#sendHeaders(res, onlyHead && endStream, body.length);
    if (this.responseDone || (onlyHead && endStream)) return;
    const fs = this.filters;
    if (body.length > 0 || !trailers) {
      for (let i = from; i >= 0; i--) {
        const st = fs[i].encodeData?.(body, endStream && !trailers);
        if (st instanceof Promise) await st;
      }
      this.streamInfo.bytesSent += body.length;
      await this.encoder.encodeData(this, body, endStream && !trailers);
    }
    if (trailers && !this.responseDone) {
      for (let i = from; i >= 0; i--) {
        const st = fs[i].encodeTrailers?.(trailers);
        if (st instanceof Promise) await st;
      }
      await this.#sendTrailers(trailers);
    }
  }

  resetStream(): void {
    if (this.responseDone) return;
    this.cfg.stats.downstream_rq_tx_reset.inc();
    this.reset = true;
    this.closeConnection = true;
    this.#abortFilters();
    this.finishResponse();
    this.encoder.resetStream(this);
  }

  /** A promise resolved when response headers are written (created on demand for upgrades). */
  waitHeaders(): Promise<void> {
    if (this.responseStarted) return Promise.resolve();
    if (!this.headersSent) this.headersSent = new Promise<void>((r) => this.#headResolve = r);
    return this.headersSent;
  }

  /** Ends the stream (called by the encoder once the response is out): stats, access log, wakes the connection. */
  finishResponse(): void {
    if (this.responseDone) return;
    this.responseDone = true;
    const cfg = this.cfg;
    cfg.timers.disarm(this.#timer);
    this.#headResolve?.();
    // Filters always see onDestroy (the router aborts an unfinished upstream request here)
    this.#abortFilters();
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
    const logs = cfg.accessLogs;
    for (let i = 0; i < logs.length; i++) logs[i].log(info);
    if (!this.requestDone) this.closeConnection = true;
    this.#doneResolve!();
  }
}

export { localReplyHead };
