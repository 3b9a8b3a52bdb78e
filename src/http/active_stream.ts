/**
 * One HTTP request/response exchange on a downstream connection: runs the HTTP filter chain (decode in
 * order, encode in reverse), implements the callbacks filters use, frames the response for HTTP/1.1 and
 * records stats and the access log when the stream ends.
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
import type { Http1ServerConnection } from "./conn_manager.ts";
import {
  chunkFrame,
  encodeResponseHead,
  joinBytes,
  LAST_CHUNK,
  localReplyHead,
  trailersBlock,
} from "./h1_glue.ts";

const EMPTY = new Uint8Array(0);
const STREAM_IDLE = 1;
const REQUEST_TIMEOUT = 2;
const MAX_DURATION = 3;

/** Hop-by-hop response headers never forwarded downstream. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"];

/** A request in flight on an HTTP/1.1 connection. */
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
  #chunked = false;
  #closeDelimited = false;
  #noBody = false;
  #pendingHead: Uint8Array | null = null;
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
    readonly conn: Http1ServerConnection,
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
    for (let i = 0; i < f.length; i++) this.filters.push(f[i].createFilter(this));
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
      this.sendLocalReply(
        fired === MAX_DURATION ? 504 : 408,
        fired === MAX_DURATION ? "downstream duration timeout" : "stream timeout",
        {
          details,
        },
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
    this.#finish();
  }

  // ---- HttpFilterCallbacks ----

  get upgradeType(): string {
    return this.conn.upgradeType;
  }

  route(): RouteEntry | null {
    if (this.#route === undefined) {
      this.#route = this.cfg.routes.match(this.request);
      if (this.#route) this.streamInfo.routeName = this.#route.name;
    }
    return this.#route;
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
    const info = this.streamInfo;
    if (opts?.flags) info.responseFlags |= opts.flags;
    if (opts?.details) info.responseCodeDetails = opts.details;
    const headers = new HeaderMap();
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
   * content-length without a header lookup. The head is written with the first body bytes.
   */
  async encodeHeaders(res: HttpResponse, endStream: boolean, knownLength = -1): Promise<void> {
    if (this.responseStarted || this.reset) return;
    this.touch();
    const fs = this.filters;
    for (let i = fs.length - 1; i >= 0; i--) {
      const f = fs[i];
      if (!f.encodeHeaders) continue;
      let st = f.encodeHeaders(res, endStream);
      if (st instanceof Promise) st = await st;
      if (st === HttpFilterStatus.StopIteration) break;
    }
    if (this.responseStarted || this.reset) return;
    this.responseStarted = true;
    const info = this.streamInfo;
    const status = res.status;
    info.responseCode = status;
    info.responseHeaders = res.headers;
    const h = res.headers;
    const req = this.request;
    for (const name of HOP_BY_HOP) if (h.has(name)) h.remove(name);
    const o = this.cfg.opts;
    if (o.serverHeaderTransformation === "OVERWRITE") h.set("server", o.serverName);
    else if (o.serverHeaderTransformation === "APPEND_IF_ABSENT" && !h.has("server")) {
      h.addLower("server", o.serverName);
    }
    if (o.alwaysSetRequestIdInResponse) {
      const id = req.headers.get("x-request-id");
      if (id) h.set("x-request-id", id);
    }
    if (o.via) h.addLower("via", o.via);
    // Framing for HTTP/1.1 downstream
    this.#noBody = (status < 200 && status !== 101) || status === 204 || status === 304 ||
      req.method === "HEAD";
    let upgrade = false;
    if (status === 101 && this.conn.upgradeType) {
      upgrade = true;
      this.upgraded = true;
      h.addLower("connection", "upgrade");
      h.addLower("upgrade", this.conn.upgradeType);
      this.cfg.stats.downstream_cx_upgrades_total.inc();
      this.cfg.stats.downstream_cx_upgrades_active.inc();
    } else if (this.#noBody) {
      if (status === 204 || (status < 200)) h.remove("content-length");
    } else if (endStream) {
      h.set("content-length", knownLength > 0 ? String(knownLength) : "0");
    } else if (knownLength >= 0) {
      h.set("content-length", String(knownLength));
    } else if (!h.has("content-length")) {
      if (this.versionMinor === 1) {
        h.addLower("transfer-encoding", "chunked");
        this.#chunked = true;
      } else {
        this.#closeDelimited = true;
      }
    }
    const close = !upgrade && (this.closeConnection || !this.keepAlive || this.#closeDelimited ||
      this.conn.draining || this.conn.closeAfterThisStream(this));
    if (close) {
      this.closeConnection = true;
      h.addLower("connection", "close");
    } else if (this.versionMinor === 0) {
      h.addLower("connection", "keep-alive");
    }
    const head = encodeResponseHead(status, h, this.versionMinor);
    this.#headResolve?.();
    if (endStream || (this.#noBody && !upgrade)) {
      await this.conn.write(head);
      this.#finish();
      return;
    }
    this.#pendingHead = head;
  }

  async encodeData(data: Uint8Array, endStream: boolean): Promise<void> {
    if (this.responseDone) return;
    if (!this.responseStarted) throw new Error("encodeData before encodeHeaders");
    this.touch();
    const fs = this.filters;
    for (let i = fs.length - 1; i >= 0; i--) {
      const f = fs[i];
      if (!f.encodeData) continue;
      let st = f.encodeData(data, endStream);
      if (st instanceof Promise) st = await st;
      if (st === HttpFilterStatus.StopIteration) return;
    }
    const len = data.length;
    this.streamInfo.bytesSent += len;
    let out: Uint8Array;
    if (this.#noBody) {
      out = EMPTY;
    } else if (this.#chunked) {
      out = len > 0 ? chunkFrame(data, endStream) : endStream ? LAST_CHUNK : EMPTY;
    } else {
      out = data;
    }
    const head = this.#pendingHead;
    if (head) {
      this.#pendingHead = null;
      if (out.length === 0) out = head;
      else if (out.length <= 16384) {
        out = joinBytes(head, out);
      } else {
        await this.conn.write(head);
      }
    }
    if (out.length > 0) await this.conn.write(out);
    if (endStream) {
      if (this.upgraded) this.conn.endTunnelWrite();
      this.#finish();
    }
  }

  async encodeTrailers(trailers: HeaderMap): Promise<void> {
    if (this.responseDone) return;
    const fs = this.filters;
    for (let i = fs.length - 1; i >= 0; i--) {
      const f = fs[i];
      if (!f.encodeTrailers) continue;
      let st = f.encodeTrailers(trailers);
      if (st instanceof Promise) st = await st;
      if (st === HttpFilterStatus.StopIteration) return;
    }
    this.streamInfo.responseTrailers = trailers;
    if (this.#chunked) {
      const head = this.#pendingHead;
      this.#pendingHead = null;
      if (head) await this.conn.write(head);
      await this.conn.write(trailersBlock(trailers));
      this.#finish();
    } else {
      await this.encodeData(EMPTY, true);
    }
  }

  resetStream(): void {
    if (this.responseDone) return;
    this.cfg.stats.downstream_rq_tx_reset.inc();
    this.reset = true;
    this.closeConnection = true;
    this.#abortFilters();
    this.#finish();
    this.down.close();
  }

  /** A promise resolved when response headers are written (created on demand for upgrades). */
  waitHeaders(): Promise<void> {
    if (this.responseStarted) return Promise.resolve();
    if (!this.headersSent) this.headersSent = new Promise<void>((r) => this.#headResolve = r);
    return this.headersSent;
  }

  /** Ends the stream: stats, access log, wakes the connection loop. Idempotent. */
  #finish(): void {
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
