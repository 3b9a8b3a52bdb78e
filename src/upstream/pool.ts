/**
 * Per-cluster connection pools: HTTP/1.1 keep-alive connections per host (LIFO reuse, peer-close
 * detection while idle, idle expiry with one coarse timer) and unpooled TCP connections for tcp_proxy.
 */
import type { Clock, TimerHandle } from "../common/clock.ts";
import type { Logger } from "../common/log.ts";
import type { CircuitBreakers, PriorityBreakers } from "./circuit_breaker.ts";
import { connectWithTimeout } from "./connect.ts";
import { BUSY, CLOSED, type ConnectionOwner, IDLE, PooledConnection } from "./pooled_connection.ts";
import type { AcquireOptions, AcquireResult, ClusterStats, Host, UpstreamConnection } from "./types.ts";

/** Opens a TCP connection (Deno.connect by default; tests inject fakes). */
export type ConnectFn = (
  opts: { hostname: string; port: number; signal?: AbortSignal },
) => Promise<Deno.Conn>;

/** Settings of one cluster's pool. */
export interface PoolOptions {
  /** The cluster's stats. */
  stats: ClusterStats;
  /** Time source for connect timeouts, idle expiry and connection length. */
  clock: Clock;
  /** connect_timeout in ms. */
  connectTimeoutMs: number;
  /** common_http_protocol_options.idle_timeout in ms; 0 disables. */
  idleTimeoutMs: number;
  /** max_requests_per_connection; 0 means unlimited. */
  maxRequestsPerConnection: number;
  /** Socket opener (default Deno.connect). */
  connect?: ConnectFn;
  /** Debug logger. */
  log?: Logger;
  /** Circuit breakers (max_connections, max_pending_requests); none means unlimited. */
  breakers?: CircuitBreakers;
}

/** An acquire queued because max_connections was reached. */
interface Waiter {
  host: Host;
  opts: AcquireOptions | undefined;
  breakers: PriorityBreakers;
  resolve: (r: AcquireResult) => void;
}

const CLOSED_RESULT: AcquireResult = {
  ok: false,
  reason: "connect_failure",
  detail: "Cluster manager closed",
};
const CANCELLED: AcquireResult = { ok: false, reason: "cancelled", detail: "Acquire cancelled" };
const PENDING_OVERFLOW: AcquireResult = {
  ok: false,
  reason: "overflow",
  detail: "Pending requests overflow",
};

/** One host's idle connections and whether the host is still a member. */
interface HostPool {
  idle: PooledConnection[];
  removed: boolean;
}

/** The connection pools of one cluster (one HostPool per host, one idle-expiry timer overall). */
export class ConnPool implements ConnectionOwner {
  readonly #o: PoolOptions;
  readonly #connect: ConnectFn;
  readonly #hosts = new Map<Host, HostPool>();
  readonly #removed = new WeakSet<Host>();
  readonly #all = new Set<PooledConnection>();
  readonly #waiters: Waiter[] = [];
  #idleCount = 0;
  #idleTimer: TimerHandle | null = null;
  #closed = false;

  constructor(opts: PoolOptions) {
    this.#o = opts;
    this.#connect = opts.connect ?? ((o) => Deno.connect(o));
  }

  /** Number of idle connections across hosts (tests, /clusters). */
  get idleCount(): number {
    return this.#idleCount;
  }

  /** Acquires queued for a connection (tests). */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** An idle keep-alive connection to `host` (most recently used first), taken at once; null when none. */
  takeIdleHttp1(host: Host): AcquireResult | null {
    const hp = this.#hosts.get(host);
    if (hp === undefined) return null;
    const c = hp.idle.pop();
    if (c === undefined) return null;
    this.#idleCount--;
    c.state = BUSY;
    c.reused = true;
    c.requests++;
    return c.acquired;
  }

  /**
   * An idle connection to `host` (most recently used first) or a new one; runs per request. A request that
   * must wait for a connection is pending (max_pending_requests); over max_connections it queues until a
   * connection of the pool is released or closed (a host with no connection at all still gets one).
   */
  acquireHttp1(host: Host, opts?: AcquireOptions): Promise<AcquireResult> {
    const idle = this.takeIdleHttp1(host);
    if (idle !== null) return Promise.resolve(idle);
    const b = this.#o.breakers;
    if (b === undefined || this.#closed) return this.#open(host, false, null);
    const pb = b.forPriority(opts?.priority ?? 0);
    if (!pb.tryPending()) {
      b.stats.upstream_rq_pending_overflow.inc();
      return Promise.resolve(PENDING_OVERFLOW);
    }
    const s = this.#o.stats;
    s.upstream_rq_pending_total.inc();
    s.upstream_rq_pending_active.inc();
    if (!pb.tryConnection()) {
      b.stats.upstream_cx_overflow.inc();
      if (host.activeConnections > 0) {
        return new Promise<AcquireResult>((resolve) => {
          this.#waiters.push({ host, opts, breakers: pb, resolve });
        });
      }
      pb.forceConnection();
    }
    return this.#open(host, false, pb).then((r) => {
      pb.releasePending();
      s.upstream_rq_pending_active.dec();
      return r;
    });
  }

  /** Gives up the queued acquire made with `opts` (resolves it with "cancelled"). */
  cancelAcquire(opts: AcquireOptions): void {
    const i = this.#waiters.findIndex((w) => w.opts === opts);
    if (i < 0) return;
    const w = this.#waiters.splice(i, 1)[0];
    this.#settle(w, CANCELLED);
  }

  /** A new unpooled connection to `host` (tcp_proxy); close it with release() or tcpClosed(). */
  connectTcp(host: Host): Promise<AcquireResult> {
    const b = this.#o.breakers;
    if (b === undefined) return this.#open(host, true, null);
    const pb = b.forPriority(0);
    if (!pb.tryConnection()) {
      b.stats.upstream_cx_overflow.inc();
      return Promise.resolve({ ok: false, reason: "overflow", detail: "Connections overflow" });
    }
    return this.#open(host, true, pb);
  }

  /**
   * Takes over a connection opened elsewhere (an auto_config HTTP/2 pool whose ALPN chose HTTP/1.1) as an
   * idle HTTP/1.1 connection; its cx stats and connection slot were counted when it opened.
   */
  adopt(host: Host, conn: Deno.Conn, createdAt: number, breakers: PriorityBreakers | null): void {
    if (!this.#hosts.has(host) && !this.#removed.has(host)) {
      this.#hosts.set(host, { idle: [], removed: false });
    }
    const c = new PooledConnection(this, conn, host, createdAt, false);
    c.breakers = breakers;
    this.#all.add(c);
    this.putIdle(c);
  }

  /** Resolves a waiter and gives back its pending slot. */
  #settle(w: Waiter, r: AcquireResult): void {
    w.breakers.releasePending();
    this.#o.stats.upstream_rq_pending_active.dec();
    w.resolve(r);
  }

  /** A connection slot was freed: open a connection for the first queued acquire that may have one. */
  #wake(): void {
    if (this.#waiters.length === 0 || this.#closed) return;
    const w = this.#waiters[0];
    if (!w.breakers.tryConnection()) return;
    this.#waiters.shift();
    this.#open(w.host, false, w.breakers).then((r) => this.#settle(w, r));
  }

  /** Records that an unpooled connection closed; `closedLocally` picks destroy_local vs destroy_remote. */
  tcpClosed(c: UpstreamConnection, closedLocally: boolean): void {
    if (c instanceof PooledConnection && c.state !== CLOSED) this.destroy(c, closedLocally);
  }

  /** Forgets `host` (membership change): closes its idle connections, busy ones close on release. */
  removeHost(host: Host): void {
    const hp = this.#hosts.get(host);
    this.#removed.add(host);
    if (hp === undefined) return;
    hp.removed = true;
    this.#hosts.delete(host);
    for (const c of hp.idle.splice(0)) {
      this.#idleCount--;
      this.destroy(c, true);
    }
  }

  /** Closes every connection (idle and in use), fails queued acquires and stops the idle timer. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) this.#settle(w, CLOSED_RESULT);
    for (const host of [...this.#hosts.keys()]) this.removeHost(host);
    for (const c of [...this.#all]) this.destroy(c, true);
    if (this.#idleTimer !== null) {
      this.#o.clock.clearTimer(this.#idleTimer);
      this.#idleTimer = null;
    }
  }

  /**
   * The cluster was retired (replaced or removed) and its hosts removed: no connection is parked any more, so
   * the idle sweep stops (busy connections still close when they are released).
   */
  retire(): void {
    if (this.#idleTimer !== null) {
      this.#o.clock.clearTimer(this.#idleTimer);
      this.#idleTimer = null;
    }
  }

  /** Called by release(true): parks the connection or closes it when it may not be reused. */
  putIdle(c: PooledConnection): void {
    const max = this.#o.maxRequestsPerConnection;
    const hp = this.#hosts.get(c.host);
    if (
      this.#closed || hp === undefined || hp.removed || (max > 0 && c.requests >= max) ||
      c.h1.start !== c.h1.end
    ) {
      this.destroy(c, true);
      return;
    }
    if (this.#waiters.length > 0) {
      // hand the connection straight to a request queued for this host
      const i = this.#waiters.findIndex((w) => w.host === c.host);
      if (i >= 0) {
        const w = this.#waiters.splice(i, 1)[0];
        c.reused = true;
        c.requests++;
        this.#settle(w, c.acquired);
        return;
      }
    }
    c.state = IDLE;
    const rx = c.lastRxMono;
    c.idleSince = rx > 0 ? rx : this.#o.clock.monotonic();
    c.lastRxMono = 0;
    hp.idle.push(c);
    this.#idleCount++;
    c.armIdleRead();
    if (this.#idleTimer === null && this.#o.idleTimeoutMs > 0) {
      this.#idleTimer = this.#o.clock.setTimer(this.#sweep, this.#o.idleTimeoutMs);
    }
  }

  /** Closes `c` and updates stats; `local` picks upstream_cx_destroy_local vs _remote. Idempotent. */
  destroy(c: PooledConnection, local: boolean): void {
    if (c.state === CLOSED) return;
    if (c.state === IDLE) {
      const hp = this.#hosts.get(c.host);
      const i = hp ? hp.idle.indexOf(c) : -1;
      if (i >= 0) {
        hp!.idle.splice(i, 1);
        this.#idleCount--;
      }
    }
    c.state = CLOSED;
    this.#all.delete(c);
    const s = this.#o.stats;
    s.upstream_cx_destroy.inc();
    (local ? s.upstream_cx_destroy_local : s.upstream_cx_destroy_remote).inc();
    s.upstream_cx_active.dec();
    s.upstream_cx_length_ms.record(this.#o.clock.monotonic() - c.createdAt);
    c.host.activeConnections--;
    try {
      c.conn.close();
    } catch {
      // already closed
    }
    if (c.breakers !== null) {
      c.breakers.releaseConnection();
      this.#wake();
    }
  }

  /** Closes idle connections past idle_timeout, then re-arms for the next expiry (coarse: >= 1 s apart). */
  #sweep = (): void => {
    this.#idleTimer = null;
    const timeout = this.#o.idleTimeoutMs;
    const now = this.#o.clock.monotonic();
    let next = Infinity;
    for (const hp of this.#hosts.values()) {
      for (let i = hp.idle.length - 1; i >= 0; i--) {
        const c = hp.idle[i];
        const expiry = c.idleSince + timeout;
        if (expiry <= now) this.destroy(c, true);
        else if (expiry < next) next = expiry;
      }
    }
    if (next !== Infinity && !this.#closed) {
      const delay = Math.max(next - now, Math.min(1000, timeout));
      this.#idleTimer = this.#o.clock.setTimer(this.#sweep, delay);
    }
  };

  #open(host: Host, tcp: boolean, breakers: PriorityBreakers | null): Promise<AcquireResult> {
    if (this.#closed) {
      breakers?.releaseConnection();
      return Promise.resolve(CLOSED_RESULT);
    }
    if (!tcp && !this.#hosts.has(host) && !this.#removed.has(host)) {
      this.#hosts.set(host, { idle: [], removed: false });
    }
    const o = this.#o;
    const s = o.stats;
    s.upstream_cx_total.inc();
    s.upstream_cx_active.inc();
    host.stats.cx_total++;
    host.activeConnections++;
    return new Promise<AcquireResult>((resolve) => {
      connectWithTimeout(this.#connect, host, o.clock, o.connectTimeoutMs, {
        stale: () => this.#closed,
        connected: (conn, connectMs) => {
          s.upstream_cx_connect_ms.record(connectMs);
          const c = new PooledConnection(this, conn, host, o.clock.monotonic(), tcp);
          c.requests = 1;
          c.breakers = breakers;
          this.#all.add(c);
          resolve(c.acquired);
        },
        failed: (reason, detail) => {
          s.upstream_cx_connect_fail.inc();
          if (reason === "connect_timeout") s.upstream_cx_connect_timeout.inc();
          s.upstream_cx_active.dec();
          host.stats.cx_connect_fail++;
          host.activeConnections--;
          if (breakers !== null) {
            breakers.releaseConnection();
            this.#wake();
          }
          o.log?.debug(`Upstream connect to ${host.addressString} failed: ${detail}`);
          resolve({ ok: false, reason, detail });
        },
      });
    });
  }
}
