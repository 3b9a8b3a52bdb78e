/**
 * The xDS client facade on the main thread: built from the bootstrap's dynamic_resources and node, it starts the
 * LDS and CDS subscriptions and lets the apply layer subscribe to RDS/EDS/SDS names on their config sources.
 */
import { type Clock, systemClock } from "../common/clock.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import type { ApiConfigSource, ConfigSource, DynamicResources } from "../config/config_source.ts";
import type { Scope } from "../stats/store.ts";
import { FileTransport } from "./file.ts";
import { RestTransport } from "./rest.ts";
import { Subscription } from "./subscription.ts";
import {
  type InitialFetchOutcome,
  type RandomSource,
  type ResolveCluster,
  TYPE_URLS,
  type ValidateAndApply,
  type XdsNode,
  type XdsTransport,
} from "./types.ts";

/** What one subscription reports to the apply layer. */
export interface SubscribeOptions {
  /** Resource names (RDS/EDS/SDS); ignored for LDS/CDS, which are wildcard. */
  names?: Iterable<string>;
  /** Scope for update_* stats (e.g. `cluster.<name>.` for EDS, `http.<prefix>.rds.<route_config>.` for RDS). */
  stats: Scope;
  /** Validates and applies an update: undefined = ACK, a message = NACK. */
  validateAndApply: ValidateAndApply;
  /** Called once when the initial fetch is done (applied, rejected or timed out). */
  onInitialFetchDone?: (outcome: InitialFetchOutcome) => void;
}

/** A live subscription: change its names or stop it. */
export interface XdsWatch {
  /** The state machine (version, nonce, last good resources). */
  readonly subscription: Subscription;
  /** Replaces the subscribed names; a new request goes out when they changed. */
  setNames(names: Iterable<string>): void;
  /** Stops the subscription and its transport. */
  close(): Promise<void>;
}

/** Builds a transport for a gRPC or ADS source (state of the world or delta); the gRPC slice provides it. */
export type GrpcTransportFactory = (
  subscription: Subscription,
  source: { ads: true } | ApiConfigSource,
) => XdsTransport;

/** Dependencies of an XdsClient. */
export interface XdsClientOptions {
  /** Node identity sent to management servers. */
  node: XdsNode;
  /** The root stats scope (the client adds `control_plane.`, `listener_manager.lds.`, `cluster_manager.cds.`). */
  stats: Scope;
  /** Resolves a management-server cluster to an address (wired to the cluster manager). */
  resolveCluster: ResolveCluster;
  /** Time source for polls, timeouts and back-off (default: the system clock). */
  clock?: Clock;
  /** Jitter source (default Math.random). */
  random?: RandomSource;
  /** Applies LDS updates; without it LDS is not started even when lds_config is set. */
  listeners?: Omit<SubscribeOptions, "names" | "stats">;
  /** Applies CDS updates; without it CDS is not started even when cds_config is set. */
  clusters?: Omit<SubscribeOptions, "names" | "stats">;
  /** gRPC/ADS transports (not built yet: without it such sources throw on subscribe). */
  grpcTransport?: GrpcTransportFactory;
}

/** The node as sent in DiscoveryRequests, from the parsed bootstrap node (nuncio as user_agent_name). */
export function xdsNode(node: Bootstrap["node"]): XdsNode {
  const n: XdsNode = {};
  if (node?.id) n.id = node.id;
  if (node?.cluster) n.cluster = node.cluster;
  if (node?.locality) n.locality = node.locality;
  if (node?.metadata) n.metadata = node.metadata;
  n.user_agent_name = node?.user_agent_name ?? "nuncio";
  if (node?.user_agent_version) n.user_agent_version = node.user_agent_version;
  return n;
}

/** Owns every xDS subscription of the process; see the file comment. */
export class XdsClient {
  #dynamic: DynamicResources | undefined;
  #opts: XdsClientOptions;
  #clock: Clock;
  #watches = new Set<XdsWatch>();
  #closed = false;

  /** Makes the client; nothing is fetched until `start()`. */
  constructor(dynamic: DynamicResources | undefined, opts: XdsClientOptions) {
    this.#dynamic = dynamic;
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Starts LDS and CDS (when configured and an apply callback is given); returns their watches. */
  start(): { lds?: XdsWatch; cds?: XdsWatch } {
    const d = this.#dynamic;
    const out: { lds?: XdsWatch; cds?: XdsWatch } = {};
    // Envoy starts CDS before LDS so listeners never point at clusters not yet asked for
    if (d?.cds_config && this.#opts.clusters) {
      out.cds = this.subscribe(TYPE_URLS.cluster, d.cds_config, {
        ...this.#opts.clusters,
        stats: this.#opts.stats.scope("cluster_manager.cds"),
      });
    }
    if (d?.lds_config && this.#opts.listeners) {
      out.lds = this.subscribe(TYPE_URLS.listener, d.lds_config, {
        ...this.#opts.listeners,
        stats: this.#opts.stats.scope("listener_manager.lds"),
      });
    }
    return out;
  }

  /** Subscribes to `typeUrl` on `source` and starts fetching; throws for sources with no transport yet. */
  subscribe(typeUrl: string, source: ConfigSource, opts: SubscribeOptions): XdsWatch {
    if (this.#closed) throw new Error("XdsClient is closed");
    const sub = new Subscription({
      typeUrl,
      names: opts.names,
      validateAndApply: opts.validateAndApply,
      stats: opts.stats,
      clock: this.#clock,
      initialFetchTimeoutMs: source.initial_fetch_timeout,
      onInitialFetchDone: opts.onInitialFetchDone,
    });
    const transport = this.#transport(sub, source);
    const watches = this.#watches;
    const watch: XdsWatch = {
      subscription: sub,
      setNames(names) {
        if (sub.setNames(names)) transport.requestNow();
      },
      async close() {
        watches.delete(watch);
        await transport.close();
      },
    };
    watches.add(watch);
    transport.start();
    return watch;
  }

  /** Stops every subscription; resolves when no timer, request or watcher is left. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#watches].map((w) => w.close()));
  }

  #transport(sub: Subscription, source: ConfigSource): XdsTransport {
    const path = source.path_config_source?.path ?? source.path;
    if (path !== undefined) {
      return new FileTransport(sub, {
        path,
        watchedDirectory: source.path_config_source?.watched_directory?.path,
        clock: this.#clock,
      });
    }
    const api = source.ads ? this.#dynamic?.ads_config : source.api_config_source;
    if (api?.api_type === "REST" && !source.ads) {
      return new RestTransport(sub, {
        clusterName: api.cluster_names[0],
        resolveCluster: this.#opts.resolveCluster,
        node: this.#opts.node,
        refreshDelayMs: api.refresh_delay,
        requestTimeoutMs: api.request_timeout,
        clock: this.#clock,
        random: this.#opts.random,
        controlPlane: this.#opts.stats.scope("control_plane"),
      });
    }
    if (!api) throw new Error("ads needs dynamic_resources.ads_config");
    if (!this.#opts.grpcTransport) throw new Error(`xDS over ${api.api_type} is not implemented yet`);
    return this.#opts.grpcTransport(sub, source.ads ? { ads: true } : api);
  }
}
