/**
 * The upstream side of the redis proxy (Envoy's conn_pool + client): per worker and cluster, one pipelined
 * connection per host. Requests are appended to the connection's write buffer in order and their reply handlers
 * queued; replies are matched to handlers in FIFO order. Writes go out when the owner flushes (after each
 * downstream read: one write carries every request of that read), or, with `max_buffer_size_before_flush`, when
 * the buffer passes that size or `buffer_flush_timeout` elapses. `op_timeout` runs while replies are owed and
 * restarts on each reply; when it fires the connection closes and every pending request fails. A failed or closed
 * connection is replaced on next use.
 */
import { connRead, connWrite, readRoom } from "../../../../network/raw_io.ts";
import { type TimeoutTarget, TimerEntry, type TimerWheel } from "../../../../common/timer_wheel.ts";
import type { Cluster, Host, UpstreamConnection } from "../../../../upstream/types.ts";
import { Fifo } from "./fifo.ts";
import { INCOMPLETE, OutBuf, PROTOCOL_ERROR, scanValue } from "./resp.ts";
import type { UpstreamCommandStatsSet } from "./upstream_stats.ts";

/** Receives the reply to one upstream request. */
export interface ReplyHandler {
  /** The reply is bytes [s, e) of `buf` (valid during the call only). */
  onReply(buf: Uint8Array, s: number, e: number): void;
  /** No reply will come (connection failed, closed or timed out). */
  onFailure(): void;
}

/** Replies nobody waits for (upstream AUTH, mirrored requests). */
export const IGNORE_REPLY: ReplyHandler = { onReply() {}, onFailure() {} };

/** What a pool needs from its owner (the filter factory of one worker). */
export interface PoolOwner {
  readonly timers: TimerWheel;
  /** op_timeout in ms. */
  readonly opTimeoutMs: number;
  /** max_buffer_size_before_flush (0: flush on every owner flush). */
  readonly maxBufferBeforeFlush: number;
  /** buffer_flush_timeout in ms. */
  readonly bufferFlushTimeoutMs: number;
  /** Time of the read being handled; the pool sets it when replies arrive. */
  readonly clock: { now: number };
  /** Called after a read's replies were dispatched (downstream connections flush their output). */
  afterUpstreamRead(): void;
  /** Clients with bytes to write: the owner flushes them after the current downstream read. */
  markDirty(c: RedisClient): void;
}

/** Credentials sent as AUTH on each new upstream connection (RedisProtocolOptions). */
export interface UpstreamAuth {
  readonly username?: string;
  readonly password: string;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;
const READ_SIZE = 64 * 1024;
const OP_TIMEOUT = 1;
const FLUSH_TIMEOUT = 2;

/** One pipelined connection to one upstream host. */
export class RedisClient implements TimeoutTarget {
  #state = CONNECTING;
  #up: UpstreamConnection | null = null;
  #out = new OutBuf(16 * 1024);
  #spare = new OutBuf(16 * 1024);
  #inflight: Uint8Array | null = null;
  #inflightOff = 0;
  readonly #pending = new Fifo<ReplyHandler>();
  readonly #opTimer = new TimerEntry(this);
  readonly #flushTimer = new TimerEntry(this);
  #closedLocally = false;
  #flushWanted = false;
  /** True while on the owner's dirty list. */
  dirty = false;

  constructor(
    readonly host: Host,
    readonly cluster: Cluster,
    readonly owner: PoolOwner,
    auth: UpstreamAuth | undefined,
    /** enable_command_stats: the cluster's upstream command stats; undefined when off. */
    readonly commandStats: UpstreamCommandStatsSet | undefined,
    /** Speak RESP3 (HELLO 3 first): the connection serves clients that sent HELLO 3. */
    resp3: boolean,
  ) {
    if (auth !== undefined) {
      const o = this.#out;
      if (auth.username !== undefined) {
        o.header(42, 3);
        o.bulkAscii("auth");
        o.bulkAscii(auth.username);
      } else {
        o.header(42, 2);
        o.bulkAscii("auth");
      }
      o.header(36, new TextEncoder().encode(auth.password).length);
      o.text(auth.password);
      o.crlf();
      this.#pending.push(IGNORE_REPLY);
    }
    if (resp3) {
      this.#out.ascii("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
      this.#pending.push(IGNORE_REPLY);
    }
    cluster.connectTcp(host).then((r) => {
      if (!r.ok) return this.#fail(false);
      this.#up = r.connection;
      if (this.#state === CLOSED) {
        // closed while connecting (factory closed)
        r.connection.conn.close();
        this.cluster.tcpClosed(r.connection, true);
        return;
      }
      this.#state = OPEN;
      this.#readLoop();
      this.flush();
    }, () => this.#fail(false));
  }

  /** False once the connection failed or closed (the pool makes a new one). */
  get usable(): boolean {
    return this.#state !== CLOSED;
  }

  /** The write buffer: the caller encodes one request into it, then calls `sent`. */
  get out(): OutBuf {
    return this.#out;
  }

  /** Queues the handler of the request just encoded into `out`. */
  sent(h: ReplyHandler): void {
    this.#pending.push(h);
    this.cluster.stats.upstream_rq_total.inc();
    const max = this.owner.maxBufferBeforeFlush;
    if (max > 0 && this.#out.len < max) {
      if (!this.#flushTimer.armed) {
        this.owner.timers.arm(this.#flushTimer, this.owner.bufferFlushTimeoutMs, FLUSH_TIMEOUT);
      }
      return;
    }
    if (!this.dirty) {
      this.dirty = true;
      this.owner.markDirty(this);
    }
  }

  onTimeout(kind: number): void {
    if (kind === FLUSH_TIMEOUT) {
      this.flush();
      return;
    }
    this.cluster.stats.upstream_rq_timeout.inc();
    this.host.stats.rq_timeout++;
    this.close();
  }

  /** Writes what is buffered (unless a write is in flight: it continues when that one completes). */
  flush(): void {
    this.dirty = false;
    if (this.#state !== OPEN || this.#out.len === 0) return;
    if (this.#inflight !== null) {
      this.#flushWanted = true;
      return;
    }
    if (this.#flushTimer.armed) this.owner.timers.disarm(this.#flushTimer);
    const o = this.#out;
    this.#inflight = o.buf.subarray(0, o.len);
    this.#inflightOff = 0;
    this.#out = this.#spare;
    this.#spare = o;
    if (!this.#opTimer.armed) this.owner.timers.arm(this.#opTimer, this.owner.opTimeoutMs, OP_TIMEOUT);
    this.#write();
  }

  #write(): void {
    const data = this.#inflight!;
    const up = this.#up!;
    connWrite(up.conn, this.#inflightOff === 0 ? data : data.subarray(this.#inflightOff)).then(
      this.#onWritten,
      this.#onWriteError,
    );
  }

  readonly #onWritten = (n: number): void => {
    const data = this.#inflight;
    if (data === null) return;
    this.cluster.stats.upstream_cx_tx_bytes_total.inc(n);
    this.#inflightOff += n;
    if (this.#inflightOff < data.length) {
      this.#write();
      return;
    }
    this.#inflight = null;
    this.#spare.len = 0;
    if (this.#flushWanted) {
      this.#flushWanted = false;
      this.flush();
    }
  };

  readonly #onWriteError = (): void => {
    this.#inflight = null;
    this.#fail(false);
  };

  async #readLoop(): Promise<void> {
    const up = this.#up!;
    let buf = new Uint8Array(READ_SIZE);
    let start = 0;
    let end = 0;
    const pending = this.#pending;
    try {
      while (true) {
        if (end === buf.length) {
          buf = readRoom(buf, start, end);
          end -= start;
          start = 0;
        }
        const n = await connRead(up.conn, end === 0 ? buf : buf.subarray(end));
        if (!n) break;
        this.cluster.stats.upstream_cx_rx_bytes_total.inc(n);
        this.owner.clock.now = performance.now();
        end += n;
        let pos = start;
        while (pos < end) {
          const e = scanValue(buf, pos, end);
          if (e === INCOMPLETE) break;
          const h = pending.shift();
          if (e === PROTOCOL_ERROR || h === undefined) {
            if (h !== undefined) h.onFailure();
            this.#fail(true);
            return;
          }
          h.onReply(buf, pos, e);
          pos = e;
        }
        if (pos === end) start = end = 0;
        else start = pos;
        if (pending.size === 0) this.owner.timers.disarm(this.#opTimer);
        else this.owner.timers.arm(this.#opTimer, this.owner.opTimeoutMs, OP_TIMEOUT);
        this.owner.afterUpstreamRead();
      }
    } catch {
      // reset by the peer or closed locally: fail below
    }
    this.#fail(!this.#closedLocally);
  }

  /** Closes the connection; pending requests fail. */
  close(): void {
    this.#closedLocally = true;
    this.#fail(false);
  }

  #fail(remote: boolean): void {
    const wasOpen = this.#state !== CLOSED;
    this.#state = CLOSED;
    this.owner.timers.disarm(this.#opTimer);
    this.owner.timers.disarm(this.#flushTimer);
    if (wasOpen && this.#up !== null) {
      try {
        this.#up.conn.close();
      } catch {
        // already closed
      }
      this.cluster.tcpClosed(this.#up, !remote);
    }
    let h: ReplyHandler | undefined;
    let failed = false;
    this.owner.clock.now = performance.now();
    while ((h = this.#pending.shift()) !== undefined) {
      h.onFailure();
      failed = true;
    }
    if (failed) this.owner.afterUpstreamRead();
  }
}

/** The clients of one cluster on one worker, one per host (and protocol version). */
export class ConnPool {
  readonly #clients = new Map<Host, RedisClient>();

  constructor(
    readonly cluster: Cluster,
    readonly owner: PoolOwner,
    readonly auth: UpstreamAuth | undefined,
    /** enable_command_stats: the cluster's upstream command stats; undefined when off. */
    readonly commandStats: UpstreamCommandStatsSet | undefined,
    /** RESP3 connections (for clients that sent HELLO 3). */
    readonly resp3: boolean,
  ) {}

  /** The client for `host`, connecting a new one when there is none or it failed. */
  client(host: Host): RedisClient {
    let c = this.#clients.get(host);
    if (c === undefined || !c.usable) {
      c = new RedisClient(host, this.cluster, this.owner, this.auth, this.commandStats, this.resp3);
      this.#clients.set(host, c);
    }
    return c;
  }

  /** A connection to `host` of its own (a transaction's), not shared and not kept by the pool. */
  dedicated(host: Host): RedisClient {
    return new RedisClient(host, this.cluster, this.owner, this.auth, this.commandStats, this.resp3);
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
