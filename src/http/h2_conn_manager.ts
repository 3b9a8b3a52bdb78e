/**
 * The HTTP/2 side of http_connection_manager: runs the HTTP/2 codec on one downstream connection and each
 * stream as an ActiveStream, with request bodies streamed under flow control (a DATA frame's window is only
 * returned once the filter chain took the bytes) and responses paced by the codec's onWritable. Connection
 * idle timeout and max_requests_per_connection end the connection with GOAWAY.
 */
import { connRead, connWrite } from "../network/raw_io.ts";
import { ResponseFlag } from "../common/response_flags.ts";
import { type TimeoutTarget, TimerEntry } from "../common/timer_wheel.ts";
import type { DownstreamConnection, TerminalFilter } from "../network/filter.ts";
import { ActiveStream } from "./active_stream.ts";
import { DONE, type HttpRequest } from "./filter.ts";
import { preparePath } from "./h1_glue.ts";
import {
  ErrorCode,
  type H2Head,
  H2ServerConnection,
  type H2Stream,
  type H2StreamHandler,
  type H2Transport,
} from "./h2/mod.ts";
import type { HcmConfig, HcmStats } from "./hcm_config.ts";
import type { HeaderMap } from "./headers.ts";
import { mutateRequestHeaders, underscoreHeaders } from "./request_headers.ts";
import type { ResponseEncoder } from "./response_encoder.ts";

/** The downstream socket as the codec's transport, counting bytes and feeding network filter observers. */
class DownstreamTransport implements H2Transport {
  constructor(readonly down: DownstreamConnection, readonly stats: HcmStats) {}

  async read(p: Uint8Array): Promise<number | null> {
    const n = (await connRead(this.down.conn, p)) || null;
    if (n !== null) {
      this.stats.downstream_cx_rx_bytes_total.inc(n);
      if (this.down.observed) this.down.observeRead(p.subarray(0, n), false);
    }
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    const n = await connWrite(this.down.conn, p);
    this.stats.downstream_cx_tx_bytes_total.inc(n);
    if (this.down.observed) this.down.observeWrite(p.subarray(0, n), false);
    return n;
  }

  close(): void {
    this.down.close();
  }
}

/** Runs HTTP/2 on one downstream connection until it closes. */
export class Http2ServerConnection implements TerminalFilter, H2StreamHandler, TimeoutTarget {
  #codec!: H2ServerConnection;
  #down!: DownstreamConnection;
  #timer = new TimerEntry(this);
  #active = 0;
  #requests = 0;
  #shuttingDown = false;

  /** `initial`: bytes already read from the connection (the preface sniffed by codec_type AUTO). */
  constructor(readonly cfg: HcmConfig, readonly initial?: Uint8Array) {}

  /** The downstream connection (for streams). */
  get down(): DownstreamConnection {
    return this.#down;
  }

  async run(down: DownstreamConnection): Promise<void> {
    this.#down = down;
    const cfg = this.cfg;
    const stats = cfg.stats;
    const o = cfg.opts;
    const started = cfg.clock.monotonic();
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    stats.downstream_cx_http2_total.inc();
    stats.downstream_cx_http2_active.inc();
    this.#codec = new H2ServerConnection(new DownstreamTransport(down, stats), this, {
      max_header_list_size: o.maxHeadersBytes,
      max_headers_count: o.maxHeadersCount,
      ...o.http2,
      stats: cfg.h2Stats,
      initial: this.initial,
    });
    this.#armIdle();
    try {
      const running = this.#codec.start(); // writes SETTINGS first
      if (this.#shuttingDown) void this.#codec.shutdown(); // drained before it started
      await running;
    } catch (err) {
      console.error("http2 connection failed", err);
    } finally {
      cfg.timers.disarm(this.#timer);
      this.#codec.close();
      down.close();
      stats.downstream_cx_active.dec();
      stats.downstream_cx_http2_active.dec();
      stats.downstream_cx_destroy.inc();
      stats.downstream_cx_length_ms.record(cfg.clock.monotonic() - started);
    }
  }

  #armIdle(): void {
    const ms = this.cfg.opts.idleTimeoutMs;
    if (ms > 0 && this.#active === 0) this.cfg.timers.arm(this.#timer, ms, 0);
  }

  /** The listener drains: graceful GOAWAY (in-flight streams finish, new ones are refused), as Envoy does. */
  drain(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    this.cfg.stats.downstream_cx_drain_close.inc();
    if (this.#codec) void this.#codec.shutdown();
  }

  /** Connection idle timeout: GOAWAY, then close once written. */
  onTimeout(_kind: number): void {
    if (this.#active > 0 || this.#codec.isClosed) return;
    this.cfg.stats.downstream_cx_idle_timeout.inc();
    this.#codec.goaway(ErrorCode.NO_ERROR);
  }

  /** A stream finished (response done or reset). */
  streamEnded(): void {
    this.#active--;
    this.#armIdle();
  }

  /** A new stream: its request head arrived. */
  onHeaders(st: H2Stream, head: H2Head, endStream: boolean): void {
    const cfg = this.cfg;
    this.#active++;
    this.cfg.timers.disarm(this.#timer);
    const s = new H2StreamCodec(this, st);
    st.handler = s;
    st.autoConsume = false;
    const max = cfg.opts.maxRequestsPerConnection;
    if (max > 0 && ++this.#requests >= max && !this.#shuttingDown) {
      // the last allowed request: drain the connection with GOAWAY, as Envoy does for HTTP/2
      this.#shuttingDown = true;
      cfg.stats.downstream_cx_max_requests_reached.inc();
      void this.#codec.shutdown();
    }
    s.run(head, endStream);
  }

  onData(): void {}
  onTrailers(): void {}
  onReset(): void {}
}

/** One HTTP/2 stream between the codec and its ActiveStream: feeds the request in, encodes the response out. */
class H2StreamCodec implements H2StreamHandler, ResponseEncoder {
  readonly upgradeType = "";
  #as!: ActiveStream;
  /** Request body chunks (copies) and trailers waiting for the filter chain. */
  #queue: (Uint8Array | HeaderMap)[] = [];
  #queueEnd = false;
  /** The filter chain is busy (decodeHeaders or a previous chunk); new frames queue. */
  #busy = true;
  #noBody = false;
  #writable: (() => void) | null = null;

  constructor(readonly conn: Http2ServerConnection, readonly st: H2Stream) {}

  /**
   * Builds and checks the request, runs the stream, then feeds any body that queued meanwhile. When the filter
   * chain and the queued body get through without waiting (the common case) no async frame is kept per stream:
   * only the end of the response is waited for.
   */
  run(head: H2Head, endStream: boolean): void {
    const conn = this.conn;
    const cfg = conn.cfg;
    const down = conn.down;
    const stats = cfg.stats;
    stats.downstream_rq_total.inc();
    stats.downstream_rq_http2_total.inc();
    stats.downstream_rq_active.inc();
    const headers = head.headers;
    const cl = this.st.contentLength;
    const request: HttpRequest = {
      method: head.method,
      path: head.path,
      authority: head.authority || headers.get("host") || "",
      scheme: head.scheme || down.scheme,
      protocol: "HTTP/2",
      headers,
      contentLength: endStream ? 0 : cl >= 0 ? cl : -1,
    };
    const as = this.#as = new ActiveStream(this, cfg, down, request, 1, true);
    as.remoteIp = down.remoteIp;
    let wait: Promise<void> | undefined;
    try {
      wait = this.#begin(head.method, request, endStream);
    } catch (err) {
      this.#crashed(err);
      this.#ended();
      return;
    }
    if (wait === undefined) as.done.then(this.#ended);
    else void this.#rest(wait);
  }

  /** Checks and decodes the request; a promise when something has to be waited for, else undefined. */
  #begin(method: string, request: HttpRequest, endStream: boolean): Promise<void> | undefined {
    const as = this.#as;
    const cfg = this.conn.cfg;
    const o = cfg.opts;
    let reject: [number, string] | null = null;
    if (method === "CONNECT") reject = [403, "connect_not_enabled"];
    else if (underscoreHeaders(o, as)) {
      // Envoy resets an HTTP/2 stream carrying a header with an underscore under REJECT_REQUEST
      as.streamInfo.responseCodeDetails = "unexpected_underscore";
      as.streamInfo.responseFlags |= ResponseFlag.DownstreamProtocolError;
      as.resetStream();
      return;
    } else if (request.path !== "*") {
      if (request.path[0] !== "/") {
        cfg.stats.downstream_rq_non_relative_path.inc();
        reject = [404, "absolute_path_rejected"];
      } else {
        const p = preparePath(request.path, o.pathOptions);
        if (!p.ok) {
          if (p.status === 307 && p.location) {
            return as.sendLocalReply(307, "", { details: p.details, headers: [["location", p.location]] });
          }
          reject = [p.status, p.details];
        } else if (p.changed) request.path = p.path;
      }
    }
    if (reject) {
      return as.sendLocalReply(reject[0], "", {
        details: reject[1],
        flags: ResponseFlag.DownstreamProtocolError,
      });
    }
    mutateRequestHeaders(o, this.conn.down, as);
    as.createFilters();
    const decoded = as.decodeHeaders(endStream);
    if (decoded !== undefined) return decoded.then(this.#drainRest);
    return this.#drain();
  }

  /** The stream had to wait in #begin: the rest of it, then the end of the response. */
  async #rest(wait: Promise<void>): Promise<void> {
    try {
      await wait;
      await this.#as.done;
    } catch (err) {
      this.#crashed(err);
    } finally {
      this.#ended();
    }
  }

  #crashed(err: unknown): void {
    console.error("http2 stream failed", err);
    this.#as.resetStream();
  }

  /** The stream is over (response done or reset). */
  readonly #ended = (): void => {
    this.#queue.length = 0;
    this.conn.streamEnded();
  };

  /**
   * Feeds queued body chunks and trailers through the filter chain, returning window as each is taken;
   * undefined when it got through without waiting, else a promise of the rest.
   */
  #drain(): Promise<void> | undefined {
    const as = this.#as;
    const q = this.#queue;
    const st = this.st;
    while (q.length > 0 && !as.responseDone) {
      const item = q.shift()!;
      if (item instanceof Uint8Array) {
        as.touch();
        const p = as.decodeData(item, q.length === 0 && this.#queueEnd);
        if (p !== undefined) return p.then(() => this.#consumed(item.length));
        if (item.length > 0) st.consume(item.length);
      } else {
        return as.decodeTrailers(item).then(this.#drainRest);
      }
    }
    this.#busy = false;
  }

  /** A chunk that had to wait went through: its window goes back, and the queue drains on. */
  #consumed(n: number): Promise<void> | undefined {
    if (n > 0) this.st.consume(n);
    return this.#drain();
  }

  readonly #drainRest = (): Promise<void> | undefined => this.#drain();

  /** Starts draining what a frame queued, unless a drain runs (errors reset the stream). */
  #kick(): void {
    if (this.#busy) return;
    this.#busy = true;
    try {
      this.#drain()?.catch(this.#failed);
    } catch {
      this.#failed();
    }
  }

  readonly #failed = (): void => {
    this.#as.resetStream();
  };

  onHeaders(): void {}

  onData(st: H2Stream, data: Uint8Array, endStream: boolean): void {
    const as = this.#as;
    if (as === undefined || as.responseDone) {
      if (data.length > 0) st.consume(data.length);
      return;
    }
    this.#queue.push(data.length > 0 ? data.slice() : EMPTY);
    if (endStream) this.#queueEnd = true;
    this.#kick();
  }

  onTrailers(_st: H2Stream, trailers: HeaderMap): void {
    const as = this.#as;
    if (as === undefined || as.responseDone) return;
    this.#queue.push(trailers);
    this.#kick();
  }

  onReset(_st: H2Stream, _code: number): void {
    this.#queue.length = 0;
    this.#as?.downstreamReset();
    this.#wake();
  }

  onWritable(): void {
    this.#wake();
  }

  #wake(): void {
    const w = this.#writable;
    if (w !== null) {
      this.#writable = null;
      w();
    }
  }

  // ---- ResponseEncoder ----

  encodeHeaders(
    s: ActiveStream,
    status: number,
    h: HeaderMap,
    endStream: boolean,
    knownLength: number,
  ): Promise<void> {
    const method = s.request.method;
    this.#noBody = method === "HEAD" || status === 204 || status === 304;
    if (knownLength >= 0 && !this.#noBody && !h.has("content-length")) {
      h.set("content-length", String(knownLength));
    }
    const end = endStream || this.#noBody;
    this.st.respond(status, h, end);
    if (end) s.finishResponse();
    return DONE;
  }

  encodeData(s: ActiveStream, data: Uint8Array, endStream: boolean): Promise<void> {
    if (data.length > 0 || endStream) {
      if (!this.st.sendData(data, endStream) && !this.st.isClosed) {
        // flow control or a full socket: the codec holds `data` until onWritable
        return new Promise<void>((r) => this.#writable = r).then(() => {
          if (endStream) s.finishResponse();
        });
      }
    }
    if (endStream) s.finishResponse();
    return DONE;
  }

  encodeTrailers(s: ActiveStream, trailers: HeaderMap): Promise<void> {
    this.st.sendTrailers(trailers);
    s.finishResponse();
    return DONE;
  }

  resetStream(_s: ActiveStream): void {
    this.#queue.length = 0;
    this.st.reset(ErrorCode.INTERNAL_ERROR);
    this.#wake();
  }
}

const EMPTY = new Uint8Array(0);
