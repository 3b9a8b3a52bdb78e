/**
 * envoy.filters.network.redis_proxy: the terminal filter. The factory (one per worker and config snapshot) holds
 * the stats, the prefix router and the upstream pools (`pool.ts`); each downstream connection is a `RedisSession`
 * (`session.ts`) that reads pipelined requests, hands them to the splitter (`splitter.ts`) and writes replies
 * back in request order.
 */
import type {
  DownstreamConnection,
  FactoryContext,
  NetworkFilterFactory,
  TerminalFilter,
} from "../../../../network/filter.ts";
import type { Counter, Gauge } from "../../../../stats/store.ts";
import { readDataSource } from "../../../../transport/cert_store.ts";
import type { Cluster, LbContext } from "../../../../upstream/types.ts";
import type { RedisProxyConfig } from "./config.ts";
import { type CommandInfo, COMMANDS, Kind } from "./commands.ts";
import { ConnPool, type PoolOwner, type RedisClient, type UpstreamAuth } from "./pool.ts";
import type { CommandStats } from "./requests.ts";
import { PrefixRouter } from "./router.ts";
import { RedisSession } from "./session.ts";
import { UpstreamCommandStatsSet } from "./upstream_stats.ts";

/** `redis.<stat_prefix>.` (Envoy's ALL_REDIS_PROXY_STATS and splitter stats). */
export interface RedisProxyStats {
  downstream_cx_active: Gauge;
  downstream_cx_drain_close: Counter;
  downstream_cx_protocol_error: Counter;
  downstream_cx_rx_bytes_buffered: Gauge;
  downstream_cx_rx_bytes_total: Counter;
  downstream_cx_total: Counter;
  downstream_cx_tx_bytes_buffered: Gauge;
  downstream_cx_tx_bytes_total: Counter;
  downstream_rq_active: Gauge;
  downstream_rq_total: Counter;
  invalid_request: Counter;
  unsupported_command: Counter;
}

/** The parsed RedisProtocolOptions the cluster config carries (typed_extension_protocol_options). */
interface RedisOptionsCarrier {
  config?: {
    typed_extension_protocol_options?: {
      redis?: {
        auth_password?: Parameters<typeof readDataSource>[0];
        auth_username?: Parameters<typeof readDataSource>[0];
      };
    };
  };
}

/** Per worker and config snapshot: stats, router, pools. */
export class RedisProxyFactory implements NetworkFilterFactory, PoolOwner {
  readonly terminal = true;
  readonly stats: RedisProxyStats;
  readonly router: PrefixRouter;
  readonly opTimeoutMs: number;
  readonly maxBufferBeforeFlush: number;
  readonly bufferFlushTimeoutMs: number;
  readonly hashtagging: boolean;
  readonly passwords: string[];
  readonly username: string;
  readonly timers: FactoryContext["timers"];
  /** performance.now() of the read being handled (downstream or upstream): one clock call per read. */
  readonly clock = { now: 0 };
  /** One LbContext reused for every pick (chooseHost is synchronous). */
  readonly lbContext: LbContext = { hash: 0n };
  readonly #cmdStats: (CommandStats | undefined)[] = [];
  readonly #custom = new Map<string, CommandInfo>();
  readonly #pools = new Map<string, ConnPool>();
  readonly #pools3 = new Map<string, ConnPool>();
  readonly #dirtyClients: RedisClient[] = [];
  readonly #dirtySessions: RedisSession[] = [];
  #clientFlushQueued = false;
  #sessionFlushQueued = false;
  readonly #scope: ReturnType<FactoryContext["stats"]["scope"]>;
  readonly #latencyScale: number;

  constructor(readonly config: RedisProxyConfig, readonly ctx: FactoryContext) {
    const s = ctx.stats.scope(`redis.${config.stat_prefix}`);
    this.#scope = s;
    this.stats = {
      downstream_cx_active: s.gauge("downstream_cx_active"),
      downstream_cx_drain_close: s.counter("downstream_cx_drain_close"),
      downstream_cx_protocol_error: s.counter("downstream_cx_protocol_error"),
      downstream_cx_rx_bytes_buffered: s.gauge("downstream_cx_rx_bytes_buffered"),
      downstream_cx_rx_bytes_total: s.counter("downstream_cx_rx_bytes_total"),
      downstream_cx_total: s.counter("downstream_cx_total"),
      downstream_cx_tx_bytes_buffered: s.gauge("downstream_cx_tx_bytes_buffered"),
      downstream_cx_tx_bytes_total: s.counter("downstream_cx_tx_bytes_total"),
      downstream_rq_active: s.gauge("downstream_rq_active"),
      downstream_rq_total: s.counter("downstream_rq_total"),
      invalid_request: s.counter("splitter.invalid_request"),
      unsupported_command: s.counter("splitter.unsupported_command"),
    };
    this.router = new PrefixRouter(config.prefix_routes);
    this.opTimeoutMs = config.settings.op_timeout;
    this.maxBufferBeforeFlush = config.settings.max_buffer_size_before_flush;
    this.bufferFlushTimeoutMs = config.settings.buffer_flush_timeout ?? 3;
    this.hashtagging = config.settings.enable_hashtagging;
    this.timers = ctx.timers;
    this.#latencyScale = config.latency_in_micros ? 1000 : 1;
    const passwords: string[] = [];
    if (config.downstream_auth_password) passwords.push(readDataSource(config.downstream_auth_password));
    for (const p of config.downstream_auth_passwords) passwords.push(readDataSource(p));
    this.passwords = passwords.filter((p) => p !== "");
    this.username = config.downstream_auth_username ? readDataSource(config.downstream_auth_username) : "";
    for (const name of config.custom_commands) {
      const lower = name.toLowerCase();
      this.#custom.set(lower, {
        name: lower,
        id: COMMANDS.length + this.#custom.size,
        kind: Kind.Simple,
        write: false,
        bytes: new TextEncoder().encode(lower),
      });
    }
  }

  /** `command.<name>.*`, made on first use of the command. */
  commandStats(info: CommandInfo): CommandStats {
    let st = this.#cmdStats[info.id];
    if (st === undefined) {
      const p = `command.${info.name}.`;
      st = {
        total: this.#scope.counter(p + "total"),
        success: this.#scope.counter(p + "success"),
        error: this.#scope.counter(p + "error"),
        latency: this.#scope.histogram(p + "latency", "unspecified"),
        scale: this.#latencyScale,
        clock: this.clock,
      };
      this.#cmdStats[info.id] = st;
    }
    return st;
  }

  /** A custom_commands entry (handled as a simple command), by lower-case name. */
  customCommand(lower: string): CommandInfo | undefined {
    return this.#custom.size === 0 ? undefined : this.#custom.get(lower);
  }

  /**
   * The pool of cluster `name` for RESP2 or RESP3 clients (rebuilt when the cluster manager swapped the cluster),
   * or undefined.
   */
  pool(name: string, resp3: boolean): ConnPool | undefined {
    const cluster = this.ctx.clusterManager.get(name);
    if (cluster === undefined) return undefined;
    const pools = resp3 ? this.#pools3 : this.#pools;
    let p = pools.get(name);
    if (p === undefined || p.cluster !== cluster) {
      p?.close();
      p = new ConnPool(
        cluster,
        this,
        upstreamAuth(cluster),
        this.config.settings.enable_command_stats
          ? new UpstreamCommandStatsSet(this.ctx.stats.scope(`cluster.${name}`), this.clock)
          : undefined,
        resp3,
      );
      pools.set(name, p);
    }
    return p;
  }

  markDirty(c: RedisClient): void {
    this.#dirtyClients.push(c);
  }

  /**
   * Writes every client's buffered requests once the reads that completed together have all been dispatched:
   * a microtask queued behind their continuations, so requests from many downstream connections share one
   * upstream write per server (the write syscall is most of the proxy's cost).
   */
  flushClients(): void {
    if (this.#clientFlushQueued || this.#dirtyClients.length === 0) return;
    this.#clientFlushQueued = true;
    queueMicrotask(this.#flushClientsNow);
  }

  readonly #flushClientsNow = (): void => {
    this.#clientFlushQueued = false;
    const list = this.#dirtyClients;
    for (let i = 0; i < list.length; i++) list[i].flush();
    list.length = 0;
  };

  /** A session has output to write after the current upstream read. */
  markSessionDirty(s: RedisSession): void {
    this.#dirtySessions.push(s);
  }

  /** Writes every session's replies after the upstream reads that completed together (as `flushClients`). */
  afterUpstreamRead(): void {
    if (this.#sessionFlushQueued || this.#dirtySessions.length === 0) return;
    this.#sessionFlushQueued = true;
    queueMicrotask(this.#flushSessionsNow);
  }

  readonly #flushSessionsNow = (): void => {
    this.#sessionFlushQueued = false;
    const list = this.#dirtySessions;
    for (let i = 0; i < list.length; i++) list[i].flush();
    list.length = 0;
  };

  createFilter(_conn: DownstreamConnection): TerminalFilter {
    return new RedisSession(this);
  }

  close(): void {
    for (const p of this.#pools.values()) p.close();
    for (const p of this.#pools3.values()) p.close();
    this.#pools.clear();
    this.#pools3.clear();
  }
}

function upstreamAuth(cluster: Cluster): UpstreamAuth | undefined {
  const o = (cluster as RedisOptionsCarrier).config?.typed_extension_protocol_options?.redis;
  if (o?.auth_password === undefined) return undefined;
  const password = readDataSource(o.auth_password);
  if (password === "") return undefined;
  return { password, username: o.auth_username ? readDataSource(o.auth_username) || undefined : undefined };
}
