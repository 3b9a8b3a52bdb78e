/**
 * A cluster's HTTP/2 connection pool: per host, multiplexed connections each carrying up to
 * min(max_concurrent_streams, the peer's SETTINGS_MAX_CONCURRENT_STREAMS) streams. A stream request waits as
 * pending (max_pending_requests) while no connection has room; a new connection opens when the pending
 * requests outgrow the connections being set up (within max_connections; a host's first connection always
 * opens, as Envoy). Connections drain on GOAWAY, close after idle_timeout without streams, and with ALPN
 * (auto_config over TLS) a connection that did not negotiate h2 is handed to the HTTP/1.1 pool.
 */
import type { Clock, TimerHandle } from "../common/clock.ts";
import { connectWithTimeout } from "./connect.ts";
import type { Logger } from "../common/log.ts";
import { H2ClientConnection } from "../http/h2/client.ts";
import type { H2ConnectionEvents } from "../http/h2/core.ts";
import type { H2Options } from "../http/h2/options.ts";
import type { H2Stats } from "../http/h2/stats.ts";
import type { H2Transport } from "../http/h2/wire.ts";
import { negotiatedAlpn } from "../transport/tls_upstream.ts";
import type { CircuitBreakers, PriorityBreakers } from "./circuit_breaker.ts";
import type { ConnectFn, ConnPool } from "./pool.ts";
import type { ClusterStats, ConnectFailure, H2StreamRequester, Host } from "./types.ts";

/** Settings of one cluster's HTTP/2 pool. */
export interface H2PoolOptions {
  /** The cluster's stats. */
  stats: ClusterStats;
  /** Time source (connect timeout, idle expiry, connection length). */
  clock: Clock;
  /** connect_timeout in ms. */
  connectTimeoutMs: number;
  /** common_http_protocol_options.idle_timeout in ms; 0 disables. */
  idleTimeoutMs: number;
  /** max_requests_per_connection (streams per connection over its life); 0 means unlimited. */
  maxRequestsPerConnection: number;
  /** Codec options (windows, limits); `max_concurrent_streams` also caps our streams per connection. */
  h2: H2Options;
  /** The codec's `http2.*` stats, shared by the cluster's connections. */
  h2Stats?: H2Stats;
  /** Socket opener (default Deno.connect). */
  connect?: ConnectFn;
  /** With ALPN (auto_config over TLS): connections that did not negotiate h2 go to `http1`. */
  http1?: ConnPool;
  /** Circuit breakers (max_connections, max_pending_requests). */
  breakers?: CircuitBreakers;
  /** Debug logger. */
  log?: Logger;
}

const CONNECTING = 0;
const READY = 1;
const DRAINING = 2;
const CLOSED = 3;
/** Streams a connection is assumed to take before the peer's SETTINGS tell (RFC 9113 suggests >= 100). */
const ASSUMED_STREAMS = 100;

interface Pending {
  req: H2StreamRequester;
  pb: PriorityBreakers | null;
}

interface HostPool {
  host: Host;
  conns: H2Conn[];
  pending: Pending[];
  connecting: number;
  /** ALPN chose HTTP/1.1 for this host. */
  http1: boolean;
}

/** One upstream HTTP/2 connection: the transport under the codec (counting bytes) and its events. */
class H2Conn implements H2ConnectionEvents, H2Transport {
  state = CONNECTING;
  h2: H2ClientConnection | null = null;
  conn: Deno.Conn | null = null;
  streamsOpened = 0;
  idleSince = 0;
  createdAt = 0;
  closedLocally = false;
  abandoned = false;

  constructor(
    readonly pool: H2Pool,
    readonly hp: HostPool,
    readonly breakers: PriorityBreakers | null,
    readonly stats: ClusterStats,
  ) {}

  async read(p: Uint8Array): Promise<number | null> {
    const n = await this.conn!.read(p);
    if (n !== null) this.stats.upstream_cx_rx_bytes_total.inc(n);
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    const n = await this.conn!.write(p);
    this.stats.upstream_cx_tx_bytes_total.inc(n);
    return n;
  }

  close(): void {
    try {
      this.conn?.close();
    } catch {
      // already closed
    }
  }

  onGoaway(): void {
    this.pool.connGoaway(this);
  }

  onClose(): void {
    this.pool.connClosed(this);
  }

  onCapacity(): void {
    this.pool.connCapacity(this);
  }
}

/** The HTTP/2 connections of one cluster. */
export class H2Pool {
  readonly #o: H2PoolOptions;
  readonly #connect: ConnectFn;
  readonly #hosts = new Map<Host, HostPool>();
  readonly #maxStreams: number;
  #idleTimer: TimerHandle | null = null;
  #closed = false;

  constructor(opts: H2PoolOptions) {
    this.#o = opts;
    this.#connect = opts.connect ?? ((o) => Deno.connect(o));
    this.#maxStreams = opts.h2.max_concurrent_streams ?? 2147483647;
  }

  /** Open connections (any state) across hosts (tests). */
  get connections(): number {
    let n = 0;
    for (const hp of this.#hosts.values()) n += hp.conns.length;
    return n;
  }

  /** Stream requests waiting for a connection (tests). */
  get pending(): number {
    let n = 0;
    for (const hp of this.#hosts.values()) n += hp.pending.length;
    return n;
  }

  /** Asks for a stream to `host`: `req.onPoolReady` runs now when a connection has room, else later. */
  newStream(host: Host, req: H2StreamRequester): void {
    if (this.#closed) return req.onPoolFailure("connect_failure", "Cluster manager closed");
    let hp = this.#hosts.get(host);
    if (hp === undefined) {
      hp = { host, conns: [], pending: [], connecting: 0, http1: false };
      this.#hosts.set(host, hp);
    }
    if (hp.http1) return req.onPoolFailure("http1", "");
    const c = this.#withRoom(hp);
    if (c !== null) return this.#attach(c, req);
    const b = this.#o.breakers;
    let pb: PriorityBreakers | null = null;
    if (b !== undefined) {
      pb = b.forPriority(req.priority);
      if (!pb.tryPending()) {
        b.stats.upstream_rq_pending_overflow.inc();
        return req.onPoolFailure("overflow", "Pending requests overflow");
      }
    }
    const s = this.#o.stats;
    s.upstream_rq_pending_total.inc();
    s.upstream_rq_pending_active.inc();
    hp.pending.push({ req, pb });
    this.#grow(hp);
  }

  /** Gives up a queued stream request (no callback follows). */
  cancel(req: H2StreamRequester): void {
    for (const hp of this.#hosts.values()) {
      const i = hp.pending.findIndex((p) => p.req === req);
      if (i < 0) continue;
      this.#unpend(hp.pending.splice(i, 1)[0]);
      return;
    }
  }

  /** Forgets `host`: queued requests fail, idle connections close, busy ones drain (GOAWAY). */
  removeHost(host: Host): void {
    const hp = this.#hosts.get(host);
    if (hp === undefined) return;
    this.#hosts.delete(host);
    this.#failPending(hp, "connect_failure", "Host removed");
    for (const c of [...hp.conns]) this.#retire(c);
  }

  /** Closes every connection, fails queued requests and stops the idle timer. */
  close(): void {
    this.#closed = true;
    for (const hp of [...this.#hosts.values()]) {
      this.#failPending(hp, "connect_failure", "Cluster manager closed");
      for (const c of [...hp.conns]) {
        c.closedLocally = true;
        if (c.h2 !== null) c.h2.close();
        else c.abandoned = true;
      }
    }
    this.#hosts.clear();
    if (this.#idleTimer !== null) {
      this.#o.clock.clearTimer(this.#idleTimer);
      this.#idleTimer = null;
    }
  }

  /** Streams `c` may still open. */
  #room(c: H2Conn): number {
    const h2 = c.h2!;
    let n = h2.available();
    const own = this.#maxStreams - h2.activeStreams;
    if (own < n) n = own;
    const max = this.#o.maxRequestsPerConnection;
    if (max > 0 && max - c.streamsOpened < n) n = max - c.streamsOpened;
    return n;
  }

  #withRoom(hp: HostPool): H2Conn | null {
    const conns = hp.conns;
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i];
      if (c.state === READY && this.#room(c) > 0) return c;
    }
    return null;
  }

  #attach(c: H2Conn, req: H2StreamRequester): void {
    c.streamsOpened++;
    req.onPoolReady(c.h2!, c.streamsOpened > 1);
  }

  #unpend(p: Pending): void {
    p.pb?.releasePending();
    this.#o.stats.upstream_rq_pending_active.dec();
  }

  #failPending(hp: HostPool, reason: ConnectFailure | "http1", detail: string): void {
    for (const p of hp.pending.splice(0)) {
      this.#unpend(p);
      p.req.onPoolFailure(reason, detail);
    }
  }

  /** Opens a connection when the pending requests outgrow the connections being set up. */
  #grow(hp: HostPool): void {
    if (this.#closed || hp.pending.length === 0) return;
    const perConn = Math.min(this.#maxStreams, ASSUMED_STREAMS);
    if (hp.pending.length <= hp.connecting * perConn) return;
    const b = this.#o.breakers;
    let pb: PriorityBreakers | null = null;
    if (b !== undefined) {
      pb = hp.pending[0].pb ?? b.forPriority(0);
      if (!pb.tryConnection()) {
        b.stats.upstream_cx_overflow.inc();
        if (hp.conns.length > 0) return; // wait for room on an existing connection or a free slot
        pb.forceConnection();
      }
    }
    this.#open(hp, pb);
  }

  /** A connection slot or stream room was freed somewhere: let waiting hosts grow. */
  #wake(): void {
    for (const hp of this.#hosts.values()) {
      if (hp.pending.length > 0 && this.#withRoom(hp) === null) this.#grow(hp);
    }
  }

  #open(hp: HostPool, pb: PriorityBreakers | null): void {
    const o = this.#o;
    const s = o.stats;
    const host = hp.host;
    const c = new H2Conn(this, hp, pb, s);
    hp.conns.push(c);
    hp.connecting++;
    s.upstream_cx_total.inc();
    s.upstream_cx_active.inc();
    host.stats.cx_total++;
    host.activeConnections++;
    c.createdAt = o.clock.monotonic();
    connectWithTimeout(this.#connect, host, o.clock, o.connectTimeoutMs, {
      stale: () => this.#closed || c.abandoned,
      connected: (conn, connectMs) => this.#connected(c, conn, connectMs),
      failed: (reason, detail) => this.#connectFailed(c, reason, detail),
    });
  }

  #connected(c: H2Conn, conn: Deno.Conn, ms: number): void {
    const o = this.#o;
    const hp = c.hp;
    o.stats.upstream_cx_connect_ms.record(ms);
    if (o.http1 !== undefined && negotiatedAlpn(conn) !== "h2") {
      // ALPN chose HTTP/1.1: the connection (and its slot) moves to the HTTP/1.1 pool
      hp.http1 = true;
      hp.connecting--;
      c.state = CLOSED;
      hp.conns.splice(hp.conns.indexOf(c), 1);
      o.http1.adopt(hp.host, conn, c.createdAt, c.breakers);
      this.#failPending(hp, "http1", "");
      return;
    }
    c.conn = conn;
    const h2 = new H2ClientConnection(c, { ...o.h2, stats: o.h2Stats, events: c });
    c.h2 = h2;
    h2.start().catch(() => {});
  }

  #connectFailed(c: H2Conn, reason: "connect_failure" | "connect_timeout", detail: string): void {
    const o = this.#o;
    const s = o.stats;
    const hp = c.hp;
    const host = hp.host;
    c.state = CLOSED;
    hp.connecting--;
    const i = hp.conns.indexOf(c);
    if (i >= 0) hp.conns.splice(i, 1);
    s.upstream_cx_connect_fail.inc();
    if (reason === "connect_timeout") s.upstream_cx_connect_timeout.inc();
    s.upstream_cx_active.dec();
    host.stats.cx_connect_fail++;
    host.activeConnections--;
    o.log?.debug(`Upstream HTTP/2 connect to ${host.addressString} failed: ${detail}`);
    if (hp.connecting === 0 && this.#withRoom(hp) === null) this.#failPending(hp, reason, detail);
    c.breakers?.releaseConnection();
    this.#wake();
  }

  /** @internal The peer's SETTINGS arrived or a stream closed on `c`. */
  connCapacity(c: H2Conn): void {
    const hp = c.hp;
    if (c.state === CONNECTING) {
      if (c.h2 === null || c.h2.isClosed) return;
      c.state = READY;
      hp.connecting--;
    }
    if (c.state !== READY) return;
    const pending = hp.pending;
    while (pending.length > 0 && this.#room(c) > 0) {
      const p = pending.shift()!;
      this.#unpend(p);
      this.#attach(c, p.req);
    }
    const h2 = c.h2!;
    if (h2.activeStreams === 0) {
      const max = this.#o.maxRequestsPerConnection;
      if (max > 0 && c.streamsOpened >= max) return this.#retire(c);
      c.idleSince = this.#o.clock.monotonic();
      if (this.#idleTimer === null && this.#o.idleTimeoutMs > 0 && !this.#closed) {
        this.#idleTimer = this.#o.clock.setTimer(this.#sweep, this.#o.idleTimeoutMs);
      }
    }
    if (pending.length > 0) this.#grow(hp);
  }

  /** @internal The peer sent GOAWAY on `c`: no new streams there. */
  connGoaway(c: H2Conn): void {
    if (c.state === CONNECTING) c.hp.connecting--;
    if (c.state === CONNECTING || c.state === READY) c.state = DRAINING;
    this.#grow(c.hp);
  }

  /** @internal `c` closed (after its streams got their final events). */
  connClosed(c: H2Conn): void {
    if (c.state === CLOSED) return;
    const hp = c.hp;
    const wasConnecting = c.state === CONNECTING;
    c.state = CLOSED;
    if (wasConnecting) hp.connecting--;
    const i = hp.conns.indexOf(c);
    if (i >= 0) hp.conns.splice(i, 1);
    const o = this.#o;
    const s = o.stats;
    s.upstream_cx_destroy.inc();
    (c.closedLocally ? s.upstream_cx_destroy_local : s.upstream_cx_destroy_remote).inc();
    s.upstream_cx_active.dec();
    s.upstream_cx_length_ms.record(o.clock.monotonic() - c.createdAt);
    hp.host.activeConnections--;
    if (wasConnecting && hp.connecting === 0 && this.#withRoom(hp) === null) {
      this.#failPending(hp, "connect_failure", "Connection closed before HTTP/2 SETTINGS");
    }
    c.breakers?.releaseConnection();
    this.#wake();
  }

  /** Stops new streams on `c` and closes it once its streams finished. */
  #retire(c: H2Conn): void {
    c.closedLocally = true;
    if (c.h2 === null) {
      c.abandoned = true;
      return;
    }
    if (c.state === READY) c.state = DRAINING;
    if (c.h2.activeStreams === 0) c.h2.close();
    else c.h2.goaway();
  }

  /** Closes connections without streams past idle_timeout, then re-arms (coarse: >= 1 s apart). */
  #sweep = (): void => {
    this.#idleTimer = null;
    const timeout = this.#o.idleTimeoutMs;
    const now = this.#o.clock.monotonic();
    let next = Infinity;
    for (const hp of this.#hosts.values()) {
      for (const c of [...hp.conns]) {
        if (c.state !== READY || c.h2!.activeStreams > 0) continue;
        const expiry = c.idleSince + timeout;
        if (expiry <= now) this.#retire(c);
        else if (expiry < next) next = expiry;
      }
    }
    if (next !== Infinity && !this.#closed) {
      this.#idleTimer = this.#o.clock.setTimer(this.#sweep, Math.max(next - now, Math.min(1000, timeout)));
    }
  };
}
