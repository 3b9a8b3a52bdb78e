/**
 * The HTTP/1.1 side of http_connection_manager: owns one downstream connection's read loop, parses
 * request heads (with header-size and header-read-time limits), applies Envoy's request header handling
 * (x-forwarded-for, x-request-id, x-envoy-* sanitizing, path normalization), runs each request as an
 * ActiveStream and streams request bodies into it with backpressure.
 */
import { ResponseFlag } from "../common/response_flags.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { type TimeoutTarget, TimerEntry } from "../common/timer_wheel.ts";
import type { DownstreamConnection, TerminalFilter } from "../network/filter.ts";
import { ActiveStream } from "./active_stream.ts";
import { isInternalAddress, splitXff } from "./address.ts";
import type { HttpRequest } from "./filter.ts";
import type { HcmConfig } from "./hcm_config.ts";
import type { HeaderMap } from "./headers.ts";
import {
  ChunkedDecoder,
  CONTINUE_100,
  H1ParseError,
  type HeadScanState,
  isH2Preface,
  localReplyHead,
  parseRequestHead,
  preparePath,
  type RequestHead,
} from "./h1_glue.ts";

/** Read buffer of a connection waiting for a head (nginx's client_header_buffer_size); grows on demand. */
const INITIAL_BUF = 1024;
const BODY_BUF = 64 * 1024;
const T_HEADERS = 1;
const T_IDLE = 2;

/** Runs HTTP/1.1 on one downstream connection until it closes. */
export class Http1ServerConnection implements TerminalFilter, TimeoutTarget {
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

  constructor(readonly cfg: HcmConfig) {}

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
      while (off < n) off += await conn.write(off === 0 ? data : data.subarray(off));
    } catch {
      this.#stream?.downstreamReset();
      this.#close();
      return;
    }
    this.cfg.stats.downstream_cx_tx_bytes_total.inc(n);
    if (this.#down.observed) this.#down.observeWrite(data, false);
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
      n = await this.#down.conn.read(buf.subarray(this.#end));
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
    this.#readAhead = this.#down.conn.read(this.#buf.subarray(this.#end)).then(
      this.#onReadAhead,
      this.#onReadAheadError,
    );
  }

  #readAheadDone(n: number | null): number | null {
    this.#readAhead = null;
    if (n === null) {
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
    const stream = new ActiveStream(this, cfg, down, request, head.versionMinor, head.keepAlive);
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
    if (!reject && o.headersWithUnderscores !== "ALLOW") {
      for (let i = headers.size - 1; i >= 0; i--) {
        if (headers.names[i].includes("_")) {
          if (o.headersWithUnderscores === "REJECT_REQUEST") {
            reject = [400, "unexpected_underscore", "Bad Request"];
            break;
          }
          headers.names.splice(i, 1);
          headers.values.splice(i, 1);
        }
      }
    }
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
    this.#mutateRequestHeaders(stream, request, headers);
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

  /** Envoy's request header handling: XFF, remote address, internal, x-envoy-*, x-request-id, XFP. */
  #mutateRequestHeaders(stream: ActiveStream, request: HttpRequest, headers: HeaderMap): void {
    const o = this.cfg.opts;
    const down = this.#down;
    const xffRaw = headers.get("x-forwarded-for");
    const xff = splitXff(xffRaw);
    let remoteIp = down.remoteIp;
    let internal: boolean;
    if (o.useRemoteAddress) {
      if (o.xffNumTrustedHops > 0 && xff.length >= o.xffNumTrustedHops) {
        remoteIp = xff[xff.length - o.xffNumTrustedHops];
      }
      internal = xff.length === 0 && isInternalAddress(down.remoteIp, o.internalCidrs);
      if (!o.skipXffAppend) {
        headers.set("x-forwarded-for", xffRaw ? `${xffRaw},${down.remoteIp}` : down.remoteIp);
      }
      headers.set("x-forwarded-proto", down.scheme);
    } else {
      if (xff.length > o.xffNumTrustedHops) remoteIp = xff[xff.length - 1 - o.xffNumTrustedHops];
      internal = xff.length === 1 && isInternalAddress(xff[0], o.internalCidrs);
      if (!headers.has("x-forwarded-proto")) headers.addLower("x-forwarded-proto", down.scheme);
    }
    stream.remoteIp = remoteIp;
    stream.internal = internal;
    if (remoteIp !== down.remoteIp) {
      stream.streamInfo.downstreamRemoteAddress = remoteIp.includes(":")
        ? `[${remoteIp}]:0`
        : `${remoteIp}:0`;
    }
    if (!internal) {
      // External requests may not steer the proxy: drop every x-envoy-* header they sent.
      let any = false;
      const names = headers.names;
      for (let i = 0; i < names.length; i++) {
        if (names[i].charCodeAt(0) === 120 && names[i].startsWith("x-envoy-")) {
          any = true;
          break;
        }
      }
      if (any) headers.removePrefix("x-envoy-");
    } else {
      headers.set("x-envoy-internal", "true");
    }
    if (o.generateRequestId) {
      const id = headers.get("x-request-id");
      if (id === undefined) headers.addLower("x-request-id", crypto.randomUUID());
      else if (!id || (!internal && !o.preserveExternalRequestId)) {
        headers.set("x-request-id", crypto.randomUUID());
      }
    }
    if (o.via) headers.addLower("via", o.via);
    if (o.stripPort !== "none") {
      const a = request.authority;
      const colon = a.lastIndexOf(":");
      if (colon > 0 && !a.endsWith("]")) {
        const port = a.slice(colon + 1);
        const local = down.localAddress.slice(down.localAddress.lastIndexOf(":") + 1);
        if (o.stripPort === "any" || port === local) request.authority = a.slice(0, colon);
      }
    }
    stream.streamInfo.authority = request.authority;
    stream.streamInfo.path = request.path;
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
