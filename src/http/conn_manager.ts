/**
 * The HTTP/1.1 side of http_connection_manager: owns one downstream connection's request loop (idle and
 * header-read timers, request-head parsing with size limits, codec-error replies), runs each request as an
 * ActiveStream and waits for its response, and sniffs the HTTP/2 preface for codec_type AUTO. Buffered reads
 * live in h1_read_buffer.ts, the pre-filter protocol checks in h1_request_checks.ts, and request body and
 * upgrade tunnel pumping in h1_request_body.ts.
 */
import { connWrite } from "../network/raw_io.ts";
import { ResponseFlag } from "../common/response_flags.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { type TimeoutTarget, TimerEntry } from "../common/timer_wheel.ts";
import type { ConnectionEnd, DownstreamConnection, TerminalFilter } from "../network/filter.ts";
import { ActiveStream } from "./active_stream.ts";
import type { HttpRequest } from "./filter.ts";
import type { HcmConfig } from "./hcm_config.ts";
import {
  CONTINUE_100,
  H1ParseError,
  h2PrefaceState,
  isH2Preface,
  localReplyHead,
  parseRequestHead,
  type RequestHead,
} from "./h1_glue.ts";
import { H1ReadBuffer, INITIAL_BUF } from "./h1_read_buffer.ts";
import { pumpRequestBody, tunnelRequestBytes } from "./h1_request_body.ts";
import { checkRequestHead } from "./h1_request_checks.ts";
import { Http2ServerConnection } from "./h2_conn_manager.ts";
import { mutateRequestHeaders } from "./request_headers.ts";
import { H1ResponseEncoder, type H1Writer } from "./response_encoder.ts";

const T_HEADERS = 1;
const T_IDLE = 2;

/**
 * Runs HTTP/1.1 on one downstream connection until it closes; with codec_type AUTO on plain text it first
 * looks for the HTTP/2 preface and hands the connection to Http2ServerConnection when it finds one.
 */
export class Http1ServerConnection implements TerminalFilter, TimeoutTarget, H1Writer {
  #rb!: H1ReadBuffer;
  #down!: DownstreamConnection;
  #timer = new TimerEntry(this);
  #requests = 0;
  #stream: ActiveStream | null = null;
  #closed = false;
  /** The HTTP/2 connection this one turned into (codec_type AUTO saw the preface). */
  #h2: Http2ServerConnection | null = null;
  /** True while codec_type AUTO looks for the HTTP/2 preface. */
  #sniffing = false;
  /** Upgrade type of the current request when it is an accepted upgrade, else "". */
  upgradeType = "";
  /** Set when the listener drains: responses carry Connection: close. */
  draining = false;
  #keepIdle = false;
  readonly #enc: H1ResponseEncoder = new H1ResponseEncoder(this);
  /** Told when the connection is done (see `start`). */
  #end!: ConnectionEnd;
  /** When the connection started as HTTP/1.1 (monotonic ms). */
  #started = 0;

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

  /**
   * The listener drains: the response in flight goes out with `Connection: close` and the connection ends
   * after it (also when its head had already gone out); a request whose head is partly read is still
   * served; a connection waiting for its next request, with nothing buffered, closes now unless `keepIdle`
   * (then its next response carries `Connection: close`, or the listener closes it when the drain time ends).
   * Before `run` it only notes the drain: `run` acts on it.
   */
  drain(keepIdle = false): void {
    if (this.draining) {
      // a shutdown during an LDS drain: idle connections go now
      if (this.#keepIdle && !keepIdle) {
        this.#keepIdle = false;
        if (this.#h2 === null && this.#down !== undefined && !this.#sniffing) this.#closeIfIdle();
      }
      return;
    }
    this.draining = true;
    this.#keepIdle = keepIdle;
    if (this.#h2 !== null) return this.#h2.drain();
    if (this.#down === undefined) return;
    // while the preface sniff runs the protocol is unknown: run() counts it once the sniff decided
    if (!this.#sniffing) this.cfg.stats.downstream_cx_drain_close.inc();
    this.#closeIfIdle();
  }

  #closeIfIdle(): void {
    if (this.#keepIdle) return;
    const rb = this.#rb;
    if (this.#stream === null && !this.#closed && rb.start === rb.end) this.#close();
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

  /** Serves the connection; resolves when it has ended (see `start`). */
  run(down: DownstreamConnection): Promise<void> {
    return new Promise<void>((resolve) => this.start(down, { connectionEnded: () => resolve() }));
  }

  /**
   * Serves the connection and tells `end` when it has ended. While it waits for a request with nothing
   * buffered the connection is parked: a read is pending (into an idle slot, see h1_read_buffer.ts) and `wake`
   * runs when it completes; no async function or promise of the connection's own is suspended, so an idle
   * keep-alive connection holds its objects and the slot only (a suspended async frame cost ~0.6 KiB, a
   * promise with its reactions ~0.4 KiB: the memory bench's per-idle-connection line).
   */
  start(down: DownstreamConnection, end: ConnectionEnd): void {
    this.#down = down;
    this.#end = end;
    this.#rb = new H1ReadBuffer(down, this.cfg.stats, this);
    this.#sniffing = this.sniff;
    if (this.sniff) {
      const o = this.cfg.opts;
      if (o.idleTimeoutMs > 0) this.cfg.timers.arm(this.#timer, o.idleTimeoutMs, T_IDLE);
    } else this.#startHttp1();
    void this.#loop();
  }

  /** Counts the connection as HTTP/1.1 (after the preface sniff, if any, decided). */
  #startHttp1(): void {
    if (this.draining) {
      // drained before it started or while the preface sniff waited: counted once, as HTTP/1.1
      this.cfg.stats.downstream_cx_drain_close.inc();
      this.#closeIfIdle();
    }
    const stats = this.cfg.stats;
    this.#started = this.cfg.clock.monotonic();
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    stats.downstream_cx_http1_total.inc();
    stats.downstream_cx_http1_active.inc();
  }

  /** The end of an HTTP/1.1 connection: timers, the stream, stats; resolves `run`. */
  async #finish(): Promise<void> {
    const stats = this.cfg.stats;
    const rb = this.#rb;
    this.cfg.timers.disarm(this.#timer);
    this.#stream?.downstreamReset();
    this.#close();
    if (rb.readAhead) await rb.readAhead.catch(() => null);
    stats.downstream_cx_active.dec();
    stats.downstream_cx_http1_active.dec();
    stats.downstream_cx_destroy.inc();
    stats.downstream_cx_length_ms.record(this.cfg.clock.monotonic() - this.#started);
    this.#end.connectionEnded(this.#down);
  }

  /**
   * codec_type AUTO on plain text: looks at the first bytes (under the idle timeout) for the HTTP/2 connection
   * preface; 1: found, 0: HTTP/1.1 (the bytes stay buffered for its parser), -1: parked until bytes come.
   */
  async #sniffH2(): Promise<number> {
    const rb = this.#rb;
    for (;;) {
      const state = rb.end > rb.start ? h2PrefaceState(rb.buf, rb.start, rb.end) : -1;
      if (state !== -1) return state;
      if (this.#closed) return 0;
      if (this.#park()) return -1;
      if (!(await rb.fill(INITIAL_BUF)) || this.#closed) return 0;
    }
  }

  /** Parks an idle connection (nothing buffered; the read-ahead of the last response may be pending): true when parked. */
  #park(): boolean {
    const rb = this.#rb;
    if (rb.start !== rb.end || rb.eof) return false;
    return rb.park();
  }

  /** A parked connection's read completed: serve again. */
  wake(): void {
    void this.#loop();
  }

  /** A read-ahead saw EOF: the client went away while its response was in flight, so reset the stream (DC). */
  clientGone(): void {
    const stream = this.#stream;
    if (stream && !stream.responseDone) stream.downstreamReset();
  }

  /**
   * The request loop: runs until the connection ends (then `#finish`) or parks; a parked connection re-enters
   * here through `wake` once bytes (or EOF) arrived.
   */
  async #loop(): Promise<void> {
    const cfg = this.cfg;
    const o = cfg.opts;
    const timers = cfg.timers;
    const rb = this.#rb;
    try {
      if (this.#sniffing) {
        const h2 = await this.#sniffH2();
        if (h2 === -1) return;
        this.#sniffing = false;
        timers.disarm(this.#timer);
        if (h2 === 1) return this.#toHttp2();
        this.#startHttp1();
      }
      for (;;) {
        if (this.#closed) break;
        // ---- wait for and parse a request head ----
        // The idle timer runs while no byte is buffered; the header timer only once a head is incomplete
        // (a head that arrives whole, the common case, never arms it).
        let head: RequestHead | null = null;
        if (rb.start === rb.end && o.idleTimeoutMs > 0) timers.arm(this.#timer, o.idleTimeoutMs, T_IDLE);
        for (;;) {
          if (rb.end > rb.start) {
            try {
              head = parseRequestHead(rb.buf, rb.start, rb.end, o, rb);
            } catch (err) {
              timers.disarm(this.#timer);
              if (err instanceof H1ParseError) {
                if (isH2Preface(rb.buf, rb.start, rb.end)) this.#close();
                else {
                  cfg.stats.downstream_cx_protocol_error.inc();
                  if (err.status === 431) cfg.stats.downstream_rq_too_large.inc();
                  await this.#rawReplyAndClose(
                    err.status,
                    err.details,
                    err.status === 431 ? "" : "Bad Request",
                  );
                }
                break;
              }
              throw err;
            }
            if (head) break;
            if (this.#timer.kind !== T_HEADERS || !this.#timer.armed) {
              if (o.requestHeadersTimeoutMs > 0) {
                timers.arm(this.#timer, o.requestHeadersTimeoutMs, T_HEADERS);
              } else timers.disarm(this.#timer);
            }
          }
          if (this.#park()) return;
          if (!rb.readAhead) rb.prepareIdleRead();
          if (!(await rb.fill(o.maxHeadersBytes + 1024))) break; // EOF before a full head: close quietly
          if (this.#closed) break;
        }
        timers.disarm(this.#timer);
        // a codec error answered, EOF or a close: the connection ends
        if (head === null || this.#closed) break;
        rb.start = head.headEnd;
        this.#requests++;
        if (!(await this.#runStream(head)) || this.#closed) break;
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.ConnectionReset)) {
        console.error("http connection failed", err);
      }
    }
    await this.#finish();
  }

  /** codec_type AUTO found the HTTP/2 preface: the connection becomes an HTTP/2 one. */
  #toHttp2(): void {
    const rb = this.#rb;
    const conn = this.#h2 = new Http2ServerConnection(this.cfg, rb.buf.slice(rb.start, rb.end));
    if (this.draining) conn.drain();
    const down = this.#down;
    const end = this.#end;
    conn.run(down).then(() => end.connectionEnded(down), (err) => end.connectionEnded(down, err));
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
    // ---- protocol-level checks that answer before any filter runs ----
    const protocol = head.versionMinor === 1 ? "HTTP/1.1" : "HTTP/1.0";
    const request: HttpRequest = {
      method: head.method,
      path: head.path,
      authority: head.absoluteHost || head.host,
      scheme: head.absoluteScheme || down.scheme,
      protocol,
      headers: head.headers,
      contentLength: head.chunked ? -1 : head.contentLength > 0 ? head.contentLength : 0,
    };
    const stream = new ActiveStream(this.#enc, cfg, down, request, head.versionMinor, head.keepAlive);
    this.#stream = stream;
    stream.remoteIp = down.remoteIp;
    const hasBody = head.chunked || head.contentLength > 0;
    const reject = checkRequestHead(o, stats, head, stream);
    if (reject !== null) {
      if (reject.status === 307 && reject.location) {
        stream.closeConnection = hasBody;
        await stream.sendLocalReply(307, "", {
          details: reject.details,
          headers: [["location", reject.location]],
        });
        return this.#afterStream(stream, hasBody);
      }
      this.upgradeType = "";
      stream.closeConnection = true;
      await stream.sendLocalReply(reject.status, "", {
        details: reject.details,
        flags: ResponseFlag.DownstreamProtocolError,
      });
      return false;
    }
    // an upgrade that passed the checks is an accepted one (h2c was stripped)
    this.upgradeType = head.upgrade === "h2c" ? "" : head.upgrade;
    mutateRequestHeaders(o, down, stream);
    stream.createFilters();
    // ---- run the stream ----
    await stream.decodeHeaders(!hasBody && !this.upgradeType);
    if (this.upgradeType) {
      await stream.waitHeaders();
      if (stream.upgraded) {
        await tunnelRequestBytes(this.#rb, stream);
        this.#stream = null;
        return false;
      }
      return this.#afterStream(stream, false);
    }
    if (hasBody && !stream.responseDone) {
      if (head.expectContinue && !o.proxy100Continue) {
        await this.write(CONTINUE_100);
      }
      await pumpRequestBody(this.#rb, stream, head, o, stats);
    }
    return this.#afterStream(stream, hasBody);
  }

  /** Waits for the response, reading ahead meanwhile so a client disconnect resets the stream. */
  async #afterStream(stream: ActiveStream, _hadBody: boolean): Promise<boolean> {
    if (!stream.responseDone) {
      this.#rb.startReadAhead();
      await stream.done;
    }
    this.#stream = null;
    if (stream.closeConnection || stream.reset || !stream.keepAlive) {
      if (this.#rb.readAhead) {
        this.#close();
      }
      return false;
    }
    if (this.draining) {
      // the drain came after this response's head went out (no Connection: close on it): end here
      this.#close();
      return false;
    }
    return !this.#closed;
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
