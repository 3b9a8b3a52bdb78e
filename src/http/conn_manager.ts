/**
 * The HTTP/1.1 side of http_connection_manager: owns one downstream connection's read loop, parses
 * request heads (with header-size and header-read-time limits), applies Envoy's request header handling
 * (x-forwarded-for, x-request-id, x-envoy-* sanitizing, path normalization), runs each request as an
 * ActiveStream and streams request bodies into it with backpressure.
 */
import { connRead, connWrite } from "../network/raw_io.ts";
import { ResponseFlag } from "../common/response_flags.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { type TimeoutTarget, TimerEntry } from "../common/timer_wheel.ts";
import type { DownstreamConnection, TerminalFilter } from "../network/filter.ts";
import { ActiveStream } from "./active_stream.ts";
import type { HttpRequest } from "./filter.ts";
import type { HcmConfig } from "./hcm_config.ts";
import {
  ChunkedDecoder,
  CONTINUE_100,
  H1ParseError,
  h2PrefaceState,
  type HeadScanState,
  isH2Preface,
  localReplyHead,
  parseRequestHead,
  preparePath,
  type RequestHead,
} from "./h1_glue.ts";
import { Http2ServerConnection } from "./h2_conn_manager.ts";
import { mutateRequestHeaders, underscoreHeaders } from "./request_headers.ts";
import { H1ResponseEncoder, type H1Writer } from "./response_encoder.ts";

/** Read buffer of a connection waiting for a head (nginx's client_header_buffer_size); grows on demand. */
const INITIAL_BUF = 1024;
const BODY_BUF = 64 * 1024;
const T_HEADERS = 1;
const T_IDLE = 2;

/**
 * Runs HTTP/1.1 on one downstream connection until it closes; with codec_type AUTO on plain text it first
 * looks for the HTTP/2 preface and hands the connection to Http2ServerConnection when it finds one.
 */
export class Http1ServerConnection implements TerminalFilter, TimeoutTarget, H1Writer {
  #buf: Uint8Array = new Uint8Array(INITIAL_BUF);
  #start = 0;
  #end = 0;
  #down!: DownstreamConnection;
  #timer = new TimerEntry(this);
  #scan: HeadScanState = { scanned: 0 };
  #requests = 0;
  #stream: ActiveStream | null = null;
  #readAhead: Promise<number | null> | null = null;
  #eof = false;
  #closed = false;
  /** Upgrade type of the current request when it is an accepted upgrade, else "". */
  upgradeType = "";
  /** Set when the listener drains: responses carry Connection: close. */
  draining = false;
  readonly #onReadAhead = (n: number | null) => this.#readAheadDone(n);
  readonly #onReadAheadError = () => this.#readAheadDone(null);
  readonly #enc: H1ResponseEncoder = new H1ResponseEncoder(this);

  /** `sniff`: look for the HTTP/2 preface first (codec_type AUTO without TLS ALPN). */
  constructor(readonly cfg: HcmConfig, readonly sniff = false) {}

  onTimeout(kind: number): void {
    if (this.#closed) return;
    if (kind === T_HEADERS) {
      this.cfg.stats.downstream_rq_header_timeout.inc();
      this.#rawReplyAndClose(408, "request_headers_timeout", "request header timeout");
    } else {
      this.cfg.stats.downstream_cx_idle_timeout.inc();
      this.#close();
    }
  }

  #close(): void {
    this.#closed = true;
    this.#down.close();
  }

  /** Writes all of `data` to the downstream (backpressure: resolves when written). */
  async write(data: Uint8Array): Promise<void> {
    const conn = this.#down.conn;
    const n = data.length;
    let off = 0;
    try {
      while (off < n) off += await connWrite(conn, off === 0 ? data : data.subarray(off));
    } catch {
      this.#stream?.downstreamReset();
      this.#close();
      return;
    }
    this.cfg.stats.downstream_cx_tx_bytes_total.inc(n);
    if (this.#down.observed) this.#down.observeWrite(data, false);
  }

  /** Closes the downstream now (a stream reset). */
  closeNow(): void {
    this.#down.close();
  }

  /** Counts an accepted upgrade. */
  countUpgrade(): void {
    this.cfg.stats.downstream_cx_upgrades_total.inc();
    this.cfg.stats.downstream_cx_upgrades_active.inc();
  }

  /** Half-closes the downstream after an upgraded stream's upstream side ended. */
  endTunnelWrite(): void {
    (this.#down.conn as Deno.TcpConn).closeWrite().catch(() => {});
  }

  /** True when this stream must be the connection's last (max_requests_per_connection). */
  closeAfterThisStream(_s: ActiveStream): boolean {
    const max = this.cfg.opts.maxRequestsPerConnection;
    return max > 0 && this.#requests >= max;
  }

  async run(down: DownstreamConnection): Promise<void> {
    this.#down = down;
    if (this.sniff && await this.#sniffH2()) {
      const initial = this.#buf.slice(this.#start, this.#end);
      return await new Http2ServerConnection(this.cfg, initial).run(down);
    }
    const stats = this.cfg.stats;
    const clock = this.cfg.clock;
    const started = clock.monotonic();
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    stats.downstream_cx_http1_total.inc();
    stats.downstream_cx_http1_active.inc();
    try {
      await this.#loop();
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset)) {
        console.error("http connection failed", err);
      }
    } finally {
      this.cfg.timers.disarm(this.#timer);
      this.#stream?.downstreamReset();
      this.#close();
      if (this.#readAhead) await this.#readAhead.catch(() => null);
      stats.downstream_cx_active.dec();
      stats.downstream_cx_http1_active.dec();
      stats.downstream_cx_destroy.inc();
      stats.downstream_cx_length_ms.record(clock.monotonic() - started);
    }
  }

  /**
   * codec_type AUTO on plain text: reads the first bytes (under the idle timeout) and reports whether they are
   * the HTTP/2 connection preface. Bytes read stay buffered for the HTTP/1.1 parser otherwise.
   */
  async #sniffH2(): Promise<boolean> {
    const o = this.cfg.opts;
    if (o.idleTimeoutMs > 0) this.cfg.timers.arm(this.#timer, o.idleTimeoutMs, T_IDLE);
    try {
      for (;;) {
        const state = this.#end > this.#start ? h2PrefaceState(this.#buf, this.#start, this.#end) : -1;
        if (state !== -1) return state === 1;
        if (!(await this.#fill(INITIAL_BUF)) || this.#closed) return false;
      }
    } finally {
      this.cfg.timers.disarm(this.#timer);
    }
  }

  /** Reads more bytes into the buffer; false on EOF/error. Compacts or grows the buffer as needed. */
  async #fill(maxGrow: number): Promise<boolean> {
    if (this.#readAhead) {
      await this.#readAhead;
      return !this.#eof;
    }
    if (this.#eof) return false;
    let buf = this.#buf;
    if (this.#end === buf.length) {
      if (this.#start > 0) {
        buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      } else {
        if (buf.length >= maxGrow) return true; // the parser reports the limit
        const bigger = new Uint8Array(Math.min(maxGrow, buf.length * 4));
        bigger.set(buf.subarray(0, this.#end));
        this.#buf = buf = bigger;
      }
    }
    let n: number | null;
    try {
      n = (await connRead(this.#down.conn, buf.subarray(this.#end))) || null;
    } catch {
      n = null;
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    this.#gotBytes(buf, this.#end, n);
    this.#end += n;
    return true;
  }

  #gotBytes(buf: Uint8Array, at: number, n: number): void {
    this.cfg.stats.downstream_cx_rx_bytes_total.inc(n);
    if (this.#down.observed) this.#down.observeRead(buf.subarray(at, at + n), false);
  }

  /**
   * Before a read that may wait long (keep-alive idle): an empty buffer restarts at 0, and one grown for a
   * body or a big head is given back, so an idle connection holds INITIAL_BUF bytes only.
   */
  #prepareIdleRead(): void {
    if (this.#start !== this.#end) return;
    this.#start = this.#end = 0;
    if (this.#buf.length > INITIAL_BUF) this.#buf = new Uint8Array(INITIAL_BUF);
  }

  /** Starts reading ahead (pipelined bytes or EOF) while a response is in flight. */
  #startReadAhead(): void {
    if (this.#readAhead || this.#eof) return;
    this.#prepareIdleRead();
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.length) return;
    this.#readAhead = connRead(this.#down.conn, this.#buf.subarray(this.#end)).then(
      this.#onReadAhead,
      this.#onReadAheadError,
    );
  }

  #readAheadDone(n: number | null): number | null {
    this.#readAhead = null;
    if (!n) {
      this.#eof = true;
      // The client went away while its response was in flight: reset the stream (Envoy: DC)
      if (this.#stream && !this.#stream.responseDone) this.#stream.downstreamReset();
      return null;
    }
    this.#gotBytes(this.#buf, this.#end, n);
    this.#end += n;
    return n;
  }

  async #loop(): Promise<void> {
    const cfg = this.cfg;
    const o = cfg.opts;
    const limits = { maxHeadersBytes: o.maxHeadersBytes, maxHeadersCount: o.maxHeadersCount };
    const timers = cfg.timers;
    for (;;) {
      // ---- wait for and parse a request head ----
      // The idle timer runs while no byte is buffered; the header timer only once a head is incomplete
      // (a head that arrives whole, the common case, never arms it).
      let head: RequestHead | null = null;
      if (this.#start === this.#end && o.idleTimeoutMs > 0) timers.arm(this.#timer, o.idleTimeoutMs, T_IDLE);
      for (;;) {
        if (this.#end > this.#start) {
          try {
            head = parseRequestHead(this.#buf, this.#start, this.#end, limits, this.#scan);
          } catch (err) {
            timers.disarm(this.#timer);
            if (err instanceof H1ParseError) {
              if (isH2Preface(this.#buf, this.#start, this.#end)) {
                this.#close();
                return;
              }
              cfg.stats.downstream_cx_protocol_error.inc();
              if (err.status === 431) cfg.stats.downstream_rq_too_large.inc();
              await this.#rawReplyAndClose(err.status, err.details, err.status === 431 ? "" : "Bad Request");
              return;
            }
            throw err;
          }
          if (head) break;
          if (this.#timer.kind !== T_HEADERS || !this.#timer.armed) {
            if (o.requestHeadersTimeoutMs > 0) timers.arm(this.#timer, o.requestHeadersTimeoutMs, T_HEADERS);
            else timers.disarm(this.#timer);
          }
        }
        if (!this.#readAhead) this.#prepareIdleRead();
        if (!(await this.#fill(o.maxHeadersBytes + 1024))) {
          timers.disarm(this.#timer);
          return; // EOF before a full head: close quietly
        }
        if (this.#closed) return;
      }
      timers.disarm(this.#timer);
      this.#start = head.headEnd;
      this.#requests++;
      const keepGoing = await this.#runStream(head);
      if (!keepGoing || this.#closed) return;
    }
  }

  /** Validates one request head, runs its stream; false when the connection must close. */
  async #runStream(head: RequestHead): Promise<boolean> {
    const cfg = this.cfg;
    const o = cfg.opts;
    const stats = cfg.stats;
    const down = this.#down;
    stats.downstream_rq_total.inc();
    stats.downstream_rq_http1_total.inc();
    stats.downstream_rq_active.inc();
    const headers = head.headers;
    // ---- protocol-level checks that answer before any filter runs ----
    let authority = head.absoluteHost || head.host;
    const protocol = head.versionMinor === 1 ? "HTTP/1.1" : "HTTP/1.0";
    const request: HttpRequest = {
      method: head.method,
      path: head.path,
      authority,
      scheme: head.absoluteScheme || down.scheme,
      protocol,
      headers,
      contentLength: head.chunked ? -1 : head.contentLength > 0 ? head.contentLength : 0,
    };
    const stream = new ActiveStream(this.#enc, cfg, down, request, head.versionMinor, head.keepAlive);
    this.#stream = stream;
    stream.remoteIp = down.remoteIp;
    const hasBody = head.chunked || head.contentLength > 0;
    let reject: [number, string, string] | null = null;
    if (head.versionMinor === 0 && !o.acceptHttp10) reject = [426, "low_version", "Upgrade Required"];
    else if (head.versionMinor === 0 && !authority) {
      if (o.defaultHostForHttp10) authority = request.authority = o.defaultHostForHttp10;
      else reject = [400, "missing_host_header", "Bad Request"];
    } else if (head.absoluteHost && !o.allowAbsoluteUrl) {
      reject = [400, "absolute_path_rejected", "Bad Request"];
    } else if (head.method === "CONNECT") reject = [403, "connect_not_enabled", "Forbidden"];
    if (!reject && head.absoluteHost) {
      headers.set("host", head.absoluteHost);
    }
    if (!reject && underscoreHeaders(o, stream)) reject = [400, "unexpected_underscore", "Bad Request"];
    if (!reject && request.path !== "*") {
      if (request.path[0] !== "/") {
        stats.downstream_rq_non_relative_path.inc();
        reject = [404, "absolute_path_rejected", "Not Found"];
      } else {
        const p = preparePath(request.path, o.pathOptions);
        if (!p.ok) {
          if (p.status === 307 && p.location) {
            stream.closeConnection = hasBody;
            await stream.sendLocalReply(307, "", { details: p.details, headers: [["location", p.location]] });
            return this.#afterStream(stream, hasBody);
          }
          reject = [p.status, p.details, "Bad Request"];
        } else if (p.changed) {
          request.path = p.path;
        }
      }
    }
    // upgrades: only the configured types pass; h2c upgrades are stripped as Envoy does
    this.upgradeType = "";
    if (!reject && head.upgrade) {
      if (head.upgrade === "h2c") {
        headers.remove("upgrade");
        headers.remove("http2-settings");
      } else if (o.upgrades.has(head.upgrade)) {
        this.upgradeType = head.upgrade;
      } else {
        reject = [403, "upgrade_failed", "Forbidden"];
      }
    }
    if (reject) {
      stream.closeConnection = true;
      await stream.sendLocalReply(reject[0], reject[1] === "low_version" ? "" : "", {
        details: reject[1],
        flags: ResponseFlag.DownstreamProtocolError,
      });
      return false;
    }
    mutateRequestHeaders(o, down, stream);
    stream.createFilters();
    // ---- run the stream ----
    await stream.decodeHeaders(!hasBody && !this.upgradeType);
    if (this.upgradeType) {
      await stream.waitHeaders();
      if (stream.upgraded) return await this.#tunnel(stream);
      return this.#afterStream(stream, false);
    }
    if (hasBody && !stream.responseDone) {
      if (head.expectContinue && !o.proxy100Continue) {
        await this.write(CONTINUE_100);
      }
      await this.#pumpBody(stream, head);
    }
    return this.#afterStream(stream, hasBody);
  }

  /** Waits for the response, reading ahead meanwhile so a client disconnect resets the stream. */
  async #afterStream(stream: ActiveStream, _hadBody: boolean): Promise<boolean> {
    if (!stream.responseDone) {
      this.#startReadAhead();
      await stream.done;
    }
    this.#stream = null;
    if (stream.closeConnection || stream.reset || !stream.keepAlive) {
      if (this.#readAhead) {
        this.#close();
      }
      return false;
    }
    return !this.#closed;
  }

  /** Streams the request body (content-length or chunked) into the stream with backpressure. */
  async #pumpBody(stream: ActiveStream, head: RequestHead): Promise<void> {
    if (!head.chunked) {
      let remaining = head.contentLength;
      while (remaining > 0 && !stream.responseDone) {
        if (this.#end === this.#start) {
          // grow to a body-sized buffer for large bodies
          if (this.#buf.length < BODY_BUF && remaining > this.#buf.length) {
            this.#buf = new Uint8Array(BODY_BUF);
          }
          this.#start = this.#end = 0;
          if (!(await this.#fill(BODY_BUF))) {
            stream.downstreamReset();
            return;
          }
        }
        const take = Math.min(remaining, this.#end - this.#start);
        const chunk = this.#buf.subarray(this.#start, this.#start + take);
        this.#start += take;
        remaining -= take;
        stream.touch();
        await stream.decodeData(chunk, remaining === 0);
      }
      if (remaining > 0) stream.closeConnection = true;
      return;
    }
    const dec = new ChunkedDecoder({
      maxHeadersBytes: this.cfg.opts.maxHeadersBytes,
      maxHeadersCount: this.cfg.opts.maxHeadersCount,
    });
    for (;;) {
      if (stream.responseDone) {
        stream.closeConnection = true;
        return;
      }
      let r;
      try {
        r = dec.next(this.#buf, this.#start, this.#end);
      } catch (err) {
        if (err instanceof H1ParseError) {
          this.cfg.stats.downstream_cx_protocol_error.inc();
          stream.closeConnection = true;
          if (!stream.responseStarted) {
            await stream.sendLocalReply(400, "Bad Request", {
              details: err.details,
              flags: ResponseFlag.DownstreamProtocolError,
            });
          } else stream.resetStream();
          return;
        }
        throw err;
      }
      this.#start = r.consumed;
      if (r.kind === "data") {
        stream.touch();
        await stream.decodeData(this.#buf.subarray(r.start, r.end), false);
      } else if (r.kind === "done") {
        if (r.trailers && r.trailers.size > 0) await stream.decodeTrailers(r.trailers);
        else await stream.decodeData(new Uint8Array(0), true);
        return;
      } else {
        if (this.#start === this.#end) {
          if (this.#buf.length < BODY_BUF) this.#buf = new Uint8Array(BODY_BUF);
          this.#start = this.#end = 0;
        }
        if (!(await this.#fill(BODY_BUF))) {
          stream.downstreamReset();
          return;
        }
      }
    }
  }

  /** After a 101: copies raw downstream bytes into the stream until EOF; the connection ends after. */
  async #tunnel(stream: ActiveStream): Promise<boolean> {
    while (!stream.responseDone || !stream.requestDone) {
      if (this.#end > this.#start) {
        const chunk = this.#buf.subarray(this.#start, this.#end);
        this.#start = this.#end = 0;
        await stream.decodeData(chunk, false);
        continue;
      }
      if (stream.requestDone) break;
      if (this.#buf.length < BODY_BUF) this.#buf = new Uint8Array(BODY_BUF);
      this.#start = this.#end = 0;
      if (!(await this.#fill(BODY_BUF))) {
        if (!stream.responseDone) await stream.decodeData(new Uint8Array(0), true);
        break;
      }
    }
    await stream.done;
    this.#stream = null;
    return false;
  }

  /** Answers with a minimal local reply outside any stream (codec errors, header timeout) and closes. */
  async #rawReplyAndClose(status: number, details: string, body: string): Promise<void> {
    const stream = this.#stream;
    if (stream && !stream.responseStarted) {
      stream.closeConnection = true;
      await stream.sendLocalReply(status, body, { details, flags: ResponseFlag.DownstreamProtocolError });
    } else if (!stream) {
      const cfg = this.cfg;
      cfg.stats.downstream_rq_xx[Math.floor(status / 100) - 1].inc();
      await this.write(localReplyHead(status, body, cfg.opts.serverName));
      // Log a codec-level error like Envoy does (no stream, empty request fields)
      const info = new StreamInfo();
      info.startTime = cfg.clock.now();
      info.startMono = info.endMono = cfg.clock.monotonic();
      info.responseCode = status;
      info.responseCodeDetails = details;
      info.responseFlags = ResponseFlag.DownstreamProtocolError;
      info.downstreamRemoteAddress = info.downstreamDirectRemoteAddress = this.#down.remoteAddress;
      info.downstreamLocalAddress = this.#down.localAddress;
      info.connectionId = this.#down.id;
      for (const l of cfg.accessLogs) l.log(info);
    }
    this.#close();
  }
}
