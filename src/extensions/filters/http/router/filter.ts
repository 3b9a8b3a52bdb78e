/**
 * envoy.filters.http.router: the terminal HTTP filter. Picks the cluster and host for the matched route,
 * sends the request over a pooled HTTP/1.1 connection, streams the body both ways with backpressure, and
 * turns failures into Envoy's local replies (NR 404, NC/UH/UF/UO/UC 503, UPE 502, UT 504).
 */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
} from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import {
  ChunkedDecoder,
  chunkFrame,
  encodeRequestHead,
  H1ParseError,
  type HeadScanState,
  LAST_CHUNK,
  parseResponseHead,
  responseBodyKind,
} from "../../../../http/h1_glue.ts";
import type { RouteActionEntry, RouteEntry } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter } from "../../../../stats/store.ts";
import type { Cluster, Host, UpstreamConnection } from "../../../../upstream/types.ts";
import type { RouterConfig } from "./config.ts";

const EMPTY = new Uint8Array(0);
const RESPONSE_LIMITS = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };
const REQUEST_HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
];

/** The long-lived router state of one HCM. */
export class RouterFactory implements HttpFilterFactory {
  readonly terminal = true;
  /** Envoy's router stats under `http.<stat_prefix>.`. */
  readonly stats: {
    no_route: Counter;
    no_cluster: Counter;
    rq_redirect: Counter;
    rq_direct_response: Counter;
    rq_total: Counter;
  };
  constructor(readonly config: RouterConfig, readonly ctx: FactoryContext, readonly statPrefix: string) {
    const s = ctx.stats.scope(`http.${statPrefix}`);
    this.stats = {
      no_route: s.counter("no_route"),
      no_cluster: s.counter("no_cluster"),
      rq_redirect: s.counter("rq_redirect"),
      rq_direct_response: s.counter("rq_direct_response"),
      rq_total: s.counter("rq_total"),
    };
  }
  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new RouterFilter(this, cb);
  }
}

/** Per-stream router. */
class RouterFilter implements HttpFilter, TimeoutTarget {
  #up: UpstreamConnection | null = null;
  #cluster: Cluster | null = null;
  #host: Host | null = null;
  #route: (RouteEntry & RouteActionEntry) | null = null;
  #chunkedUp = false;
  #requestSent = false;
  #done = false;
  /** The whole upstream response is in hand (the last bytes may still be going downstream). */
  #upstreamComplete = false;
  #upstreamStart = 0;
  #timer = new TimerEntry(this);
  #timeoutMs = 0;
  #destroyed = false;
  #reading: Promise<void> | null = null;

  constructor(readonly f: RouterFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const cb = this.cb;
    const route = cb.route();
    const stats = this.f.stats;
    stats.rq_total.inc();
    if (!route) {
      stats.no_route.inc();
      cb.streamInfo.responseFlags |= ResponseFlag.NoRouteFound;
      return this.#localReply(404, "", ResponseFlag.NoRouteFound, "route_not_found");
    }
    if (route.kind === "direct_response") {
      stats.rq_direct_response.inc();
      return this.#direct(route, route.status, route.body, null);
    }
    if (route.kind === "redirect") {
      stats.rq_redirect.inc();
      const r = route.redirect(cb.request);
      return this.#direct(route, r.status, EMPTY, r.location);
    }
    this.#route = route;
    const req = cb.request;
    const name = route.selectCluster(req, Math.random());
    const cluster = name ? this.f.ctx.clusterManager.get(name) : undefined;
    cb.streamInfo.upstreamCluster = name;
    if (!cluster) {
      stats.no_cluster.inc();
      return this.#localReply(503, "", ResponseFlag.NoClusterFound, "cluster_not_found");
    }
    this.#cluster = cluster;
    return this.#start(endStream);
  }

  async #direct(
    route: RouteEntry,
    status: number,
    body: Uint8Array,
    location: string | null,
  ): Promise<HttpFilterStatus> {
    const cb = this.cb;
    const h = new HeaderMap();
    if (location) h.addLower("location", location);
    if (body.length > 0) h.addLower("content-type", "text/plain");
    if (!route.responseHeaders.empty) route.responseHeaders.apply(h, cb.routeContext());
    cb.streamInfo.responseCodeDetails = location ? "direct_response" : "direct_response";
    if (body.length > 0) h.set("content-length", String(body.length));
    await cb.encodeHeaders({ status, headers: h }, body.length === 0);
    if (body.length > 0) await cb.encodeData(body, true);
    return HttpFilterStatus.StopIteration;
  }

  async #localReply(
    status: number,
    body: string,
    flags: number,
    details: string,
    extra?: [string, string][],
  ): Promise<HttpFilterStatus> {
    const headers: [string, string][] = extra ?? [];
    const route = this.#route;
    if (route && !route.responseHeaders.empty) {
      const h = new HeaderMap();
      route.responseHeaders.apply(h, this.cb.routeContext());
      for (const p of h) headers.push(p);
    }
    await this.cb.sendLocalReply(status, body, { flags, details, headers });
    return HttpFilterStatus.StopIteration;
  }

  /** Acquires a connection and sends the request head; the response is read concurrently. */
  async #start(endStream: boolean): Promise<HttpFilterStatus> {
    const cb = this.cb;
    const info = cb.streamInfo;
    const route = this.#route!;
    const cluster = this.#cluster!;
    const req = cb.request;
    const host = cluster.chooseHost(route.hasHashPolicy ? { hash: route.hash(req, cb.routeContext()) } : {});
    if (!host) {
      cluster.stats.upstream_cx_none_healthy.inc();
      return this.#localReply(
        503,
        "no healthy upstream",
        ResponseFlag.NoHealthyUpstream,
        "no_healthy_upstream",
      );
    }
    this.#host = host;
    info.upstreamHost = host.addressString;
    // ---- upstream request head ----
    const h = req.headers;
    for (const name of REQUEST_HOP_BY_HOP) if (h.has(name)) h.remove(name);
    const upgrade = cb.upgradeType;
    if (upgrade) {
      h.addLower("connection", "upgrade");
      h.addLower("upgrade", upgrade);
    }
    let path = req.path;
    const rewritten = route.rewritePath(req);
    if (rewritten !== undefined) {
      h.set("x-envoy-original-path", path);
      info.originalPath = path;
      path = rewritten;
    }
    if (route.hostRewriteLiteral !== undefined) h.set("host", route.hostRewriteLiteral);
    else if (route.autoHostRewrite) h.set("host", host.hostname);
    else if (!h.has("host")) h.set("host", req.authority);
    else if (h.get("host") !== req.authority) h.set("host", req.authority);
    if (!route.requestHeaders.empty) route.requestHeaders.apply(h, cb.routeContext());
    this.#timeoutMs = route.timeoutMs;
    if (this.#timeoutMs > 0 && !this.f.config.suppress_envoy_headers) {
      h.set("x-envoy-expected-rq-timeout-ms", String(this.#timeoutMs));
    }
    if (req.contentLength < 0 && !endStream) {
      h.addLower("transfer-encoding", "chunked");
      this.#chunkedUp = true;
    }
    const head = encodeRequestHead(req.method, path, h);
    const stats = cluster.stats;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    host.activeRequests++;
    host.stats.rq_total++;
    this.#upstreamStart = this.f.ctx.clock.monotonic();
    if (endStream) this.#armTimeout();
    for (let attempt = 0; attempt < 2; attempt++) {
      const acq = await cluster.acquireHttp1(host);
      if (this.#destroyed) {
        if (acq.ok) acq.connection.release(true);
        return HttpFilterStatus.StopIteration;
      }
      if (!acq.ok) {
        this.#finishUpstream(false);
        if (acq.reason === "overflow") {
          return this.#localReply(
            503,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            ResponseFlag.UpstreamOverflow,
            "upstream_reset_before_response_started{overflow}",
            [["x-envoy-overloaded", "true"]],
          );
        }
        info.upstreamTransportFailureReason = acq.detail;
        return this.#localReply(
          503,
          `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${acq.detail}`,
          ResponseFlag.UpstreamConnectionFailure,
          "upstream_reset_before_response_started{connection_failure}",
        );
      }
      const up = acq.connection;
      this.#up = up;
      try {
        const la = up.conn.localAddr as Deno.NetAddr;
        info.upstreamLocalAddress = `${la.hostname}:${la.port}`;
      } catch {
        // closed under us: the write below fails and we retry
      }
      if (await this.#writeUp(head)) break;
      // a reused keep-alive connection the upstream closed: retry once on a fresh one
      if (!up.reused || attempt === 1) {
        this.#up = null;
        up.release(false);
        this.#finishUpstream(false);
        return this.#localReply(
          503,
          "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
          ResponseFlag.UpstreamConnectionTermination,
          "upstream_reset_before_response_started{connection_termination}",
        );
      }
      this.#up = null;
      up.release(false);
    }
    this.#requestSent = endStream;
    this.#reading = this.#readResponse();
    return HttpFilterStatus.StopIteration;
  }

  async #writeUp(data: Uint8Array): Promise<boolean> {
    const up = this.#up;
    if (!up) return false;
    try {
      let off = 0;
      while (off < data.length) off += await up.conn.write(off === 0 ? data : data.subarray(off));
      this.#cluster!.stats.upstream_cx_tx_bytes_total.inc(data.length);
      return true;
    } catch {
      return false;
    }
  }

  async decodeData(data: Uint8Array, endStream: boolean): Promise<HttpFilterStatus> {
    if (!this.#up || this.#done) return HttpFilterStatus.StopIteration;
    let out: Uint8Array = data;
    if (this.#chunkedUp) out = data.length > 0 ? chunkFrame(data, endStream) : endStream ? LAST_CHUNK : EMPTY;
    if (out.length > 0 && !(await this.#writeUp(out))) {
      this.#upstreamReset("connection_termination");
      return HttpFilterStatus.StopIteration;
    }
    if (endStream) {
      this.#requestSent = true;
      if (!this.cb.upgradeType || !this.#tunnel) this.#armTimeout();
      if (this.#tunnel && this.#up) (this.#up.conn as Deno.TcpConn).closeWrite().catch(() => {});
    }
    return HttpFilterStatus.StopIteration;
  }

  decodeTrailers(trailers: HeaderMap): Promise<HttpFilterStatus> {
    // HTTP/1.1 upstream: trailers travel after the last chunk
    let s = "0\r\n";
    for (const [k, v] of trailers) s += k + ": " + v + "\r\n";
    const bytes = new TextEncoder().encode(s + "\r\n");
    this.#requestSent = true;
    this.#armTimeout();
    if (!this.#chunkedUp) return Promise.resolve(HttpFilterStatus.StopIteration);
    return this.#writeUp(bytes).then(() => HttpFilterStatus.StopIteration);
  }

  #armTimeout(): void {
    if (this.#timeoutMs > 0 && !this.#done) this.f.ctx.timers.arm(this.#timer, this.#timeoutMs, 0);
  }

  onTimeout(): void {
    if (this.#done || this.#destroyed || this.#upstreamComplete) return;
    const cluster = this.#cluster!;
    cluster.stats.upstream_rq_timeout.inc();
    this.#host!.stats.rq_timeout++;
    const cb = this.cb;
    this.#closeUpstream();
    this.#finishUpstream(false);
    if (!cb.responseStarted) {
      cb.sendLocalReply(504, "upstream request timeout", {
        flags: ResponseFlag.UpstreamRequestTimeout,
        details: "upstream_response_timeout",
      }).catch(() => cb.resetStream());
    } else {
      cb.streamInfo.responseFlags |= ResponseFlag.UpstreamRequestTimeout;
      cb.resetStream();
    }
  }

  #tunnel = false;

  /** Reads and forwards the upstream response; releases the connection when done. */
  async #readResponse(): Promise<void> {
    const up = this.#up!;
    const cb = this.cb;
    const cluster = this.#cluster!;
    const clock = this.f.ctx.clock;
    const buf = up.readBuf;
    const scan: HeadScanState = { scanned: 0 };
    let start = up.readStart;
    let end = up.readEnd;
    let headersSent = false;
    let reusable = false;
    try {
      // ---- head ----
      let head = null;
      for (;;) {
        if (end > start) {
          head = parseResponseHead(buf, start, end, RESPONSE_LIMITS, scan);
          if (head) {
            start = head.headEnd;
            if (head.status >= 100 && head.status < 200 && head.status !== 101) {
              head = null; // 1xx interim responses are absorbed (Envoy answers 100-continue itself)
              continue;
            }
            break;
          }
        }
        const n = await this.#read(up, buf, start, end);
        if (this.#done) return;
        if (n === null) {
          this.#upstreamReset("connection_termination");
          return;
        }
        start = this.#lastStart;
        end = this.#lastEnd;
      }
      const info = cb.streamInfo;
      const now = clock.monotonic();
      info.firstUpstreamRxMono = now;
      const status = head.status;
      const h = head.headers;
      const route = this.#route!;
      if (!this.f.config.suppress_envoy_headers) {
        h.set("x-envoy-upstream-service-time", String(Math.round(now - this.#upstreamStart)));
      }
      if (!route.responseHeaders.empty) route.responseHeaders.apply(h, cb.routeContext());
      cluster.stats.recordResponseCode(status);
      info.responseCodeDetails = "via_upstream";
      const kind = status === 101 ? "close" : responseBodyKind(head, cb.request.method);
      if (status === 101) this.#tunnel = true;
      headersSent = true;
      if (kind === "none") {
        reusable = head.keepAlive && end === start;
        this.#upstreamComplete = true;
      }
      await cb.encodeHeaders({ status, headers: h }, kind === "none");
      if (this.#done) return;
      if (kind === "none") return;
      if (kind === "length") {
        let remaining = head.contentLength;
        while (remaining > 0) {
          if (end === start) {
            await cb.encodeData(EMPTY, false); // flush the head before waiting
            start = end = 0;
            const n = await this.#read(up, buf, 0, 0);
            if (this.#done) return;
            if (n === null) {
              this.#upstreamReset("connection_termination");
              return;
            }
            end = n;
          }
          const take = Math.min(remaining, end - start);
          remaining -= take;
          const chunk = buf.subarray(start, start + take);
          start += take;
          if (remaining === 0) {
            reusable = head.keepAlive && end === start;
            this.#upstreamComplete = true;
          }
          await cb.encodeData(chunk, remaining === 0);
          if (this.#done) return;
        }
        return;
      }
      if (kind === "chunked") {
        const dec = new ChunkedDecoder(RESPONSE_LIMITS, 502);
        for (;;) {
          const r = dec.next(buf, start, end);
          start = r.consumed;
          if (r.kind === "data") {
            await cb.encodeData(buf.subarray(r.start, r.end), false);
          } else if (r.kind === "done") {
            reusable = head.keepAlive && end === start;
            this.#upstreamComplete = true;
            if (r.trailers && r.trailers.size > 0) await cb.encodeTrailers(r.trailers);
            else await cb.encodeData(EMPTY, true);
            return;
          } else {
            await cb.encodeData(EMPTY, false);
            if (start === end) start = end = 0;
            else if (end === buf.length) {
              buf.copyWithin(0, start, end);
              end -= start;
              start = 0;
            }
            const n = await this.#read(up, buf, start, end);
            if (this.#done) return;
            if (n === null) {
              this.#upstreamReset("connection_termination");
              return;
            }
            start = this.#lastStart;
            end = this.#lastEnd;
          }
          if (this.#done) return;
        }
      }
      // close-delimited (HTTP/1.0 style) or an upgraded tunnel: forward until EOF
      if (end > start) await cb.encodeData(buf.subarray(start, end), false);
      else await cb.encodeData(EMPTY, false);
      for (;;) {
        const n = await this.#read(up, buf, 0, 0);
        if (this.#done) return;
        if (n === null) break;
        await cb.encodeData(buf.subarray(0, n), false);
      }
      this.#upstreamComplete = true;
      await cb.encodeData(EMPTY, true);
    } catch (err) {
      if (this.#done || this.#destroyed || this.#upstreamComplete) return;
      if (err instanceof H1ParseError && !headersSent) {
        this.#closeUpstream();
        this.#finishUpstream(false);
        await this.#localReply(
          502,
          "upstream protocol error",
          ResponseFlag.UpstreamProtocolError,
          "upstream_protocol_error",
        );
        return;
      }
      this.#upstreamReset("connection_termination");
      return;
    } finally {
      if (this.#upstreamComplete) {
        this.#finishUpstream(true);
        if (this.#up) {
          const u = this.#up;
          this.#up = null;
          u.readStart = 0;
          u.readEnd = 0;
          u.release(reusable && this.#requestSent && !this.#tunnel);
        }
      }
    }
  }

  #lastStart = 0;
  #lastEnd = 0;

  /** Reads into buf after `end` (compacting when full); sets #lastStart/#lastEnd; null on EOF/error. */
  async #read(up: UpstreamConnection, buf: Uint8Array, start: number, end: number): Promise<number | null> {
    let n: number | null;
    if (end === buf.length && start > 0) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    try {
      if (up.pendingRead) {
        // the pool's idle read landed at readEnd of the connection's buffer
        const p = up.pendingRead;
        up.pendingRead = null;
        n = await p;
        if (n !== null) {
          start = up.readStart;
          end = up.readEnd + n;
          up.readEnd = end;
        }
      } else {
        if (end === buf.length) throw new H1ParseError(502, "upstream_headers_too_large");
        n = await up.conn.read(buf.subarray(end));
        if (n !== null) end += n;
      }
    } catch (err) {
      if (err instanceof H1ParseError) throw err;
      n = null;
    }
    if (n !== null) {
      this.#cluster!.stats.upstream_cx_rx_bytes_total.inc(n);
      this.cb.streamInfo.firstUpstreamRxMono ||= this.f.ctx.clock.monotonic();
    }
    this.#lastStart = start;
    this.#lastEnd = end;
    return n;
  }

  /** The upstream connection failed mid-exchange. */
  #upstreamReset(reason: string): void {
    if (this.#done || this.#destroyed) return;
    const cb = this.cb;
    this.#cluster!.stats.upstream_rq_rx_reset.inc();
    this.#closeUpstream();
    this.#finishUpstream(false);
    if (!cb.responseStarted) {
      cb.sendLocalReply(
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: ${
          reason.replace("_", " ")
        }`,
        {
          flags: ResponseFlag.UpstreamConnectionTermination,
          details: `upstream_reset_before_response_started{${reason}}`,
        },
      ).catch(() => cb.resetStream());
    } else {
      cb.streamInfo.responseFlags |= ResponseFlag.UpstreamConnectionTermination;
      cb.streamInfo.responseCodeDetails = `upstream_reset_after_response_started{${reason}}`;
      cb.resetStream();
    }
  }

  #closeUpstream(): void {
    const up = this.#up;
    if (!up) return;
    this.#up = null;
    up.release(false);
  }

  /** Upstream request bookkeeping, once. */
  #finishUpstream(success: boolean): void {
    if (this.#done) return;
    this.#done = true;
    this.f.ctx.timers.disarm(this.#timer);
    const cluster = this.#cluster;
    const host = this.#host;
    if (!cluster || !host) return;
    cluster.stats.upstream_rq_active.dec();
    cluster.stats.upstream_rq_completed.inc();
    host.activeRequests--;
    if (success) {
      cluster.stats.upstream_rq_time.record(this.f.ctx.clock.monotonic() - this.#upstreamStart);
      host.stats.rq_success++;
    } else host.stats.rq_error++;
  }

  onDestroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (!this.#done && !this.#upstreamComplete) {
      if (this.#up) this.#cluster?.stats.upstream_rq_tx_reset.inc();
      this.#closeUpstream();
      this.#finishUpstream(false);
    }
  }
}
