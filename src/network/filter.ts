/**
 * Network filters (Envoy's L4 filter chain). Non-terminal filters observe and may stop a connection;
 * the terminal filter (tcp_proxy, http_connection_manager) owns the byte loop of the connection.
 */
import type { SharedArena } from "../common/shared_arena.ts";
import type { Clock } from "../common/clock.ts";
import type { TimerWheel } from "../common/timer_wheel.ts";
import type { Logger } from "../common/log.ts";
import type { DownstreamTlsInfo } from "../common/tls_info.ts";
import type { StreamInfo } from "../common/stream_info.ts";
import type { RouteConfigRegistry } from "../http/routing/provider.ts";
import type { ExtensionRef } from "../config/extension_ref.ts";
import type { Registry } from "../registry/registry.ts";
import type { Scope, StatsStore } from "../stats/store.ts";
import type { ClusterManager } from "../upstream/types.ts";

/** What a filter tells the chain. */
export const FilterStatus = { Continue: 0, StopIteration: 1 } as const;
/** One of FilterStatus. */
export type FilterStatus = typeof FilterStatus[keyof typeof FilterStatus];

/** A downstream connection as the filter chain sees it. */
export interface DownstreamConnection {
  /** Unique per worker. */
  readonly id: number;
  /** The socket (TCP or TLS). */
  readonly conn: Deno.Conn;
  /** Peer IP. */
  readonly remoteIp: string;
  /** "ip:port" of the peer. */
  readonly remoteAddress: string;
  /** "ip:port" of our side (the original destination when a listener filter restored it). */
  readonly localAddress: string;
  /** True when original_dst or proxy_protocol restored `localAddress` (ORIGINAL_DST clusters connect there). */
  readonly localAddressRestored?: boolean;
  /** "https" over TLS, else "http". */
  readonly scheme: "http" | "https";
  /** SNI of a TLS connection, "" otherwise. */
  readonly serverName: string;
  /** The TLS session (SNI, ALPN, version, certificates; "" when not known); absent for plain text. */
  readonly tls?: DownstreamTlsInfo;
  /** Per-connection buffer limit from the listener (default 1 MiB). */
  readonly bufferLimitBytes: number;
  /**
   * Calls the onData observers of non-terminal filters (terminal filters call it for bytes read). A promise
   * returned is a hold (a fault delay): a terminal filter that honours holds (tcp_proxy) passes these bytes on
   * and reads again only once it settles.
   */
  observeRead(data: Uint8Array, endStream: boolean): Promise<void> | undefined;
  /**
   * Calls the onWrite observers of non-terminal filters (terminal filters call it for bytes written; tcp_proxy
   * once they are written, so an observer may close the connection after a reply it saw).
   */
  observeWrite(data: Uint8Array, endStream: boolean): void;
  /**
   * The connection's StreamInfo when its terminal filter keeps one for the whole connection (tcp_proxy sets it
   * before any byte flows), else null: non-terminal filters read the upstream host there and add dynamic
   * metadata (Envoy's connection-level `streamInfo().dynamicMetadata()`, which tcp_proxy's access log prints).
   */
  streamInfo: StreamInfo | null;
  /** True when any non-terminal filter observes bytes (skip the calls otherwise). */
  readonly observed: boolean;
  /** Closes the socket (idempotent). */
  close(): void;
  /** True once closed. */
  readonly closed: boolean;
}

/** A non-terminal filter instance (one per connection). */
export interface ReadFilter {
  /** Called once when the connection is accepted; StopIteration closes it (e.g. over a rate limit). */
  onNewConnection?(conn: DownstreamConnection): FilterStatus | Promise<FilterStatus>;
  /**
   * Observes bytes read from downstream (must not keep or alter `data` without copying). May return a promise
   * that holds these bytes until it resolves (it must resolve, also when the connection closes): see
   * `DownstreamConnection.observeRead`.
   */
  onData?(data: Uint8Array, endStream: boolean): void | Promise<void>;
  /** Observes bytes written to downstream. */
  onWrite?(data: Uint8Array, endStream: boolean): void;
  /**
   * The listener drains (see `TerminalFilter.drain`, called with it): a filter that knows the protocol may close
   * the connection at a clean point (mongo_proxy: after the reply in flight). Absent: nothing to do.
   */
  onDrain?(keepIdle?: boolean): void;
  /** Called once when the connection closed. */
  onClose?(): void;
}

/** The terminal filter instance: runs the connection until it ends. */
export interface TerminalFilter {
  /** Owns the connection's reads and writes; resolves when the connection is done. Never rejects. */
  run(conn: DownstreamConnection): Promise<void>;
  /**
   * `run` without a promise: calls `end.connectionEnded(conn)` once when the connection is done. The listener
   * prefers it when present, so a connection that waits long (an idle keep-alive one) holds no promise,
   * reaction or callback of its own; `end` is one object for all of a listener's connections.
   */
  start?(conn: DownstreamConnection, end: ConnectionEnd): void;
  /**
   * The listener is draining (shutdown, hot restart, a listener update): let in-flight work finish and tell
   * the peer to go away (HTTP/1.1 `Connection: close` on the next response, and idle connections closed at
   * once unless `keepIdle`: an LDS update leaves them to the end of the drain time, as Envoy does, so a client
   * never races a close with its next request; HTTP/2 GOAWAY). May be called before `run` starts; absent
   * means "nothing to tell" (tcp_proxy).
   */
  drain?(keepIdle?: boolean): void;
}

/** Told when a connection run by `TerminalFilter.start` is done; `err` is an unexpected failure, if one ended it. */
export interface ConnectionEnd {
  connectionEnded(conn: DownstreamConnection, err?: unknown): void;
}

/** The long-lived factory built once per config snapshot (Envoy's FilterConfig). */
export interface NetworkFilterFactory {
  /** True for tcp_proxy / http_connection_manager. */
  readonly terminal: boolean;
  /**
   * The filter reads SNI or TLS version/cipher/session id (`DownstreamConnection.tls`), e.g. in an access log:
   * a listener with one TLS chain then reads each ClientHello instead of using Deno's TLS listener, which
   * exposes only ALPN. Absent: false.
   */
  readonly needsTlsFacts?: boolean;
  /** Makes the per-connection filter. */
  createFilter(conn: DownstreamConnection): ReadFilter | TerminalFilter;
  /** Listener warming: a promise while the factory cannot serve yet (RDS routes not arrived), else undefined. */
  whenReady?(): Promise<void> | undefined;
  /** Releases timers or resources (access log files) when the snapshot is retired; awaited by stop(). */
  close?(): void | Promise<void>;
}

/** Everything an extension factory may use when it is built for a config snapshot. */
export interface FactoryContext {
  /** The worker's root stats store. */
  readonly stats: StatsStore;
  /** The listener's scope (`listener.<address>.`). */
  readonly listenerScope: Scope;
  /** Clusters of this snapshot. */
  readonly clusterManager: ClusterManager;
  /** Time source. */
  readonly clock: Clock;
  /** The worker's coarse timer wheel for connection and request timeouts. */
  readonly timers: TimerWheel;
  /** Extension lookup (for nested typed configs). */
  readonly registry: Registry;
  /** Logger for the extension. */
  readonly log: Logger;
  /** The bootstrap node (id, cluster) for headers like x-envoy-downstream-service-cluster. */
  readonly node: { id: string; cluster: string };
  /** Memory shared with the main thread and every worker (cross-worker limits, buckets, health). */
  readonly shared: SharedArena;
  /** The data plane's RDS route configs by name (absent outside a DataPlane: `rds` cannot be built). */
  readonly routes?: RouteConfigRegistry;
  /** The bootstrap's `tracing.http` provider (a `tracer` extension), the default of HCM `tracing` blocks. */
  readonly tracingProvider?: ExtensionRef;
  /** The listener's traffic_direction: OUTBOUND makes HCM spans egress spans (Envoy's operation name). */
  readonly trafficDirection?: string;
}

/** The `create` signature of network filter extensions. */
export type NetworkFilterCreate<C> = (config: C, ctx: FactoryContext) => NetworkFilterFactory;
