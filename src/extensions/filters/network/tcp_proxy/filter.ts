/**
 * envoy.filters.network.tcp_proxy: connects each downstream connection to a host of a cluster and copies
 * bytes both ways with plain read()/write() loops (the fast path measured in facts.md), keeping half-close.
 */
import { connRead, connWrite } from "../../../../network/raw_io.ts";
import { BufferPool, IDLE_SLOT_BYTES, idleReadSlots } from "../../../../network/read_memory.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { StreamInfo } from "../../../../common/stream_info.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import type { AccessLogger } from "../../../../access_log/types.ts";
import { anyUsesTlsFacts, createAccessLogs } from "../../../../access_log/config.ts";
import type {
  DownstreamConnection,
  FactoryContext,
  NetworkFilterFactory,
  TerminalFilter,
} from "../../../../network/filter.ts";
import type { Counter, Gauge } from "../../../../stats/store.ts";
import type { Cluster, LbContext, UpstreamConnection } from "../../../../upstream/types.ts";
import type { TcpProxyConfig } from "./config.ts";

/** The buffer of a direction while bytes stream in bulk. */
const BUF_SIZE = 32 * 1024;
/** Bulk buffers of directions that went back to small reads (2 MiB kept at most). */
const bulkBuffers = new BufferPool(BUF_SIZE, 64);
/** The load-balancer context of a connection with nothing to hash or avoid (shared, never mutated). */
const NO_LB_CONTEXT: LbContext = {};
const IDLE_DEFAULT_MS = 3_600_000;

interface TcpStats {
  downstream_cx_total: Counter;
  downstream_cx_no_route: Counter;
  downstream_cx_rx_bytes_total: Counter;
  downstream_cx_tx_bytes_total: Counter;
  idle_timeout: Counter;
  max_downstream_connection_duration: Counter;
  upstream_flush_active: Gauge;
}

/** Per-snapshot state shared by every connection of one tcp_proxy filter config. */
export class TcpProxyFactory implements NetworkFilterFactory {
  readonly terminal = true;
  readonly stats: TcpStats;
  readonly idleMs: number;
  readonly maxDurationMs: number;
  readonly attempts: number;
  readonly accessLogs: AccessLogger[];
  readonly needsTlsFacts: boolean;
  readonly #clusters: { name: string; weight: number }[];
  readonly #totalWeight: number;

  constructor(readonly config: TcpProxyConfig, readonly ctx: FactoryContext) {
    const s = ctx.stats.scope(`tcp.${config.stat_prefix}`);
    this.stats = {
      downstream_cx_total: s.counter("downstream_cx_total"),
      downstream_cx_no_route: s.counter("downstream_cx_no_route"),
      downstream_cx_rx_bytes_total: s.counter("downstream_cx_rx_bytes_total"),
      downstream_cx_tx_bytes_total: s.counter("downstream_cx_tx_bytes_total"),
      idle_timeout: s.counter("idle_timeout"),
      max_downstream_connection_duration: s.counter("max_downstream_connection_duration"),
      upstream_flush_active: s.gauge("upstream_flush_active"),
    };
    this.idleMs = config.idle_timeout ?? IDLE_DEFAULT_MS;
    this.maxDurationMs = config.max_downstream_connection_duration ?? 0;
    this.attempts = config.max_connect_attempts ?? 1;
    this.accessLogs = createAccessLogs(config.access_log ?? [], ctx);
    this.needsTlsFacts = anyUsesTlsFacts(this.accessLogs);
    this.#clusters = config.weighted_clusters
      ? config.weighted_clusters.clusters.map((c) => ({ name: c.name, weight: c.weight }))
      : [{ name: config.cluster!, weight: 1 }];
    this.#totalWeight = this.#clusters.reduce((a, c) => a + c.weight, 0);
  }

  /** Flushes and closes the access logs. */
  async close(): Promise<void> {
    await Promise.all(this.accessLogs.map((l) => l.close()));
  }

  /** Picks the cluster name (weighted at random). */
  pickCluster(): string {
    if (this.#clusters.length === 1) return this.#clusters[0].name;
    let r = Math.random() * this.#totalWeight;
    for (const c of this.#clusters) {
      if ((r -= c.weight) < 0) return c.name;
    }
    return this.#clusters[this.#clusters.length - 1].name;
  }

  createFilter(_conn: DownstreamConnection): TerminalFilter {
    return new TcpProxySession(this);
  }
}

const IDLE = 1;
const MAX_DURATION = 2;
const DRAIN_CHECK = 3;
/**
 * While the listener drains (shutdown, hot restart, an LDS update), a connection that carried no byte in either
 * direction for this long is closed then, rather than cut at the end of the drain: nothing is in flight on it,
 * and its client reconnects (to the new listener or process) before it needs the connection again.
 */
const DRAIN_IDLE_MS = 1000;

/** One proxied TCP session. */
class TcpProxySession implements TerminalFilter, TimeoutTarget {
  readonly info = new StreamInfo();
  #down: DownstreamConnection | undefined;
  #up: UpstreamConnection | undefined;
  #cluster: Cluster | undefined;
  #lastActivity = 0;
  #idleTimer = new TimerEntry(this);
  #durationTimer = new TimerEntry(this);
  #drainTimer = new TimerEntry(this);
  /** Bytes moved both ways when the drain last looked; -1 while not draining. */
  #drainBytes = -1;
  #draining = false;
  #closedLocally = false;

  constructor(readonly f: TcpProxyFactory) {}

  /** The listener drains: close this connection once it is idle (see DRAIN_IDLE_MS). */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    if (this.#up !== undefined) this.#armDrain();
  }

  #armDrain(): void {
    this.#drainBytes = this.info.bytesReceived + this.info.bytesSent;
    this.f.ctx.timers.arm(this.#drainTimer, DRAIN_IDLE_MS, DRAIN_CHECK);
  }

  onTimeout(kind: number): void {
    if (kind === DRAIN_CHECK) {
      if (this.info.bytesReceived + this.info.bytesSent !== this.#drainBytes) return this.#armDrain();
      this.info.connectionTerminationDetails = "drain_idle";
      return this.#closeBoth();
    }
    const now = this.f.ctx.clock.monotonic();
    if (kind === IDLE) {
      const due = this.#lastActivity + this.f.idleMs;
      if (due > now + 1) {
        this.f.ctx.timers.arm(this.#idleTimer, due - now, IDLE);
        return;
      }
      this.f.stats.idle_timeout.inc();
      this.info.connectionTerminationDetails = "idle_timeout";
    } else {
      this.f.stats.max_downstream_connection_duration.inc();
      this.info.connectionTerminationDetails = "max_downstream_connection_duration";
      this.info.responseFlags |= ResponseFlag.DurationTimeout;
    }
    this.#closeBoth();
  }

  #closeBoth(): void {
    this.#closedLocally = true;
    this.#down?.close();
    if (this.#up) {
      try {
        this.#up.conn.close();
      } catch {
        // already closed
      }
    }
  }

  async run(down: DownstreamConnection): Promise<void> {
    const f = this.f;
    const ctx = f.ctx;
    this.#down = down;
    const info = this.info;
    info.startTime = ctx.clock.now();
    info.startMono = ctx.clock.monotonic();
    info.downstreamRemoteAddress = down.remoteAddress;
    info.downstreamDirectRemoteAddress = down.remoteAddress;
    info.downstreamLocalAddress = down.localAddress;
    info.connectionId = down.id;
    info.requestedServerName = down.serverName;
    info.downstreamTls = down.tls ?? null;
    down.streamInfo = info;
    f.stats.downstream_cx_total.inc();
    try {
      const name = f.pickCluster();
      const cluster = ctx.clusterManager.get(name);
      info.upstreamCluster = name;
      if (!cluster) {
        f.stats.downstream_cx_no_route.inc();
        info.responseFlags |= ResponseFlag.NoClusterFound;
        info.connectionTerminationDetails = "no_cluster";
        return;
      }
      this.#cluster = cluster;
      let up: UpstreamConnection | undefined;
      for (let attempt = 0; attempt < f.attempts && !up && !down.closed; attempt++) {
        const host = cluster.chooseHost(
          down.localAddressRestored && cluster.connectsToOriginalDst
            ? { originalDst: down.localAddress }
            : NO_LB_CONTEXT,
        );
        if (!host) {
          info.responseFlags |= ResponseFlag.NoHealthyUpstream;
          cluster.stats.upstream_cx_none_healthy.inc();
          break;
        }
        info.upstreamHost = host.addressString;
        const r = await cluster.connectTcp(host);
        if (r.ok) up = r.connection;
        else {
          info.responseFlags |= r.reason === "overflow"
            ? ResponseFlag.UpstreamOverflow
            : ResponseFlag.UpstreamConnectionFailure;
          info.upstreamTransportFailureReason = r.detail;
        }
      }
      if (!up) return;
      if (down.closed) {
        up.conn.close();
        cluster.tcpClosed(up, true);
        return;
      }
      info.responseFlags &= ~(ResponseFlag.UpstreamConnectionFailure | ResponseFlag.UpstreamOverflow);
      this.#up = up;
      const la = up.conn.localAddr as Deno.NetAddr;
      info.upstreamLocalAddress = `${la.hostname}:${la.port}`;
      this.#lastActivity = ctx.clock.monotonic();
      if (f.idleMs > 0) ctx.timers.arm(this.#idleTimer, f.idleMs, IDLE);
      if (f.maxDurationMs > 0) ctx.timers.arm(this.#durationTimer, f.maxDurationMs, MAX_DURATION);
      if (this.#draining) this.#armDrain();
      await Promise.all([this.#pump(down.conn, up.conn, true), this.#pump(up.conn, down.conn, false)]);
    } finally {
      ctx.timers.disarm(this.#idleTimer);
      ctx.timers.disarm(this.#durationTimer);
      ctx.timers.disarm(this.#drainTimer);
      if (this.#up) {
        try {
          this.#up.conn.close();
        } catch {
          // closed already
        }
        this.#cluster!.tcpClosed(this.#up, this.#closedLocally);
      }
      down.close();
      info.endMono = ctx.clock.monotonic();
      for (const l of f.accessLogs) l.log(info);
    }
  }

  /**
   * Copies src -> dst until EOF, then half-closes dst; on error closes both. Reads go into a slot; a read that
   * fills it switches the direction to a bulk buffer, and a bulk read that would have fit the slot switches it
   * back (the buffer returns to a pool: its bytes were written, and observers copy what they keep).
   */
  async #pump(src: Deno.Conn, dst: Deno.Conn, fromDownstream: boolean): Promise<void> {
    // small messages or none: a slot of the shared slabs, so an idle connection holds 2 x 512 bytes, no buffer
    const slot = idleReadSlots.take();
    let buf = slot;
    const f = this.f;
    const down = this.#down!;
    // the wheel's coarse time (no clock call per chunk): the idle timer is armed, so the wheel runs
    const timers = f.idleMs > 0 ? f.ctx.timers : null;
    try {
      for (;;) {
        const n = await connRead(src, buf);
        if (!n) break;
        if (timers !== null) this.#lastActivity = timers.now();
        const chunk = buf.subarray(0, n);
        if (fromDownstream) {
          this.info.bytesReceived += n;
          f.stats.downstream_cx_rx_bytes_total.inc(n);
          if (down.observed) {
            const hold = down.observeRead(chunk, false);
            if (hold !== undefined) await hold;
          }
        } else {
          this.info.bytesSent += n;
          f.stats.downstream_cx_tx_bytes_total.inc(n);
        }
        let off = 0;
        while (off < n) off += await connWrite(dst, chunk.subarray(off));
        // observed once written, so an observer may close the connection after the bytes it saw (mongo drain)
        if (!fromDownstream && down.observed) down.observeWrite(chunk, false);
        if (buf === slot) {
          if (n === IDLE_SLOT_BYTES) buf = bulkBuffers.take();
        } else if (n <= IDLE_SLOT_BYTES) {
          bulkBuffers.give(buf);
          buf = slot;
        }
      }
      if (down.observed) {
        if (fromDownstream) down.observeRead(new Uint8Array(0), true);
        else down.observeWrite(new Uint8Array(0), true);
      }
      try {
        await (dst as Deno.TcpConn).closeWrite();
      } catch {
        // peer already gone: the other pump ends on its own
      }
    } catch {
      // reset or closed by a timer: end both directions
      if (!fromDownstream && !this.#closedLocally) {
        this.info.responseFlags |= ResponseFlag.UpstreamConnectionTermination;
      }
      this.#closeBoth();
    } finally {
      // no read is pending any more: the slot and the buffer go back
      if (buf !== slot) bulkBuffers.give(buf);
      idleReadSlots.give(slot);
    }
  }
}
