/**
 * Assembles a running registry (store, sweeper, HTTP port). Used by `nuncio discovery` (cli.ts); an embedded
 * mode (a bootstrap extension, like the rate-limit service's) can call the same function.
 */
import type { Clock } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import { StatsStore } from "../stats/store.ts";
import { type GrpcEdsOptions, GrpcEdsServer } from "./grpc_eds.ts";
import { discoveryHttpHandler } from "./http.ts";
import { RedisStore } from "./redis_store.ts";
import { Registry } from "./registry.ts";
import { MemoryStore, type RegistryStore } from "./store.ts";

const log = new Logger("discovery");

/** How to run the registry. */
export interface DiscoveryServiceOptions {
  /** HTTP port; 0 picks one. */
  port: number;
  /** Address to bind (default 127.0.0.1). */
  hostname?: string;
  /** gRPC port for EDS and ADS (grpc_eds.ts); 0 picks one; absent: no gRPC. */
  grpcPort?: number;
  /** Limits and timing of the gRPC EDS server. */
  grpc?: GrpcEdsOptions;
  /** Host TTL (default 600 000 ms). */
  ttlMs?: number;
  /** Sweeper period (default 30 000 ms; 0: none). */
  sweepIntervalMs?: number;
  /** `redis://host:port[/db]`; absent: in-memory store. */
  redisUrl?: string;
  /** Prefix of every Redis key (default `nuncio:discovery:`). */
  redisKeyPrefix?: string;
  /** Redis command timeout (default 1000 ms). */
  redisTimeoutMs?: number;
  /** `env` of v1 answers (default "production"). */
  env?: string;
  /** Stats store to count in; default a new one. */
  stats?: StatsStore;
  clock?: Clock;
}

/** A running registry. */
export interface DiscoveryHandle extends AsyncDisposable {
  readonly registry: Registry;
  /** Bound HTTP port. */
  readonly port: number;
  /** Bound gRPC port (EDS/ADS), or undefined. */
  readonly grpcPort: number | undefined;
  /** Stops the port, the sweeper and the store. */
  close(): Promise<void>;
}

/** Starts the registry; with Redis it waits up to a second for the first connection, then serves anyway. */
export async function startDiscoveryService(opts: DiscoveryServiceOptions): Promise<DiscoveryHandle> {
  const stats = opts.stats ?? new StatsStore();
  const redisStats = stats.scope("discovery.redis.");
  const store: RegistryStore = opts.redisUrl
    ? new RedisStore(opts.redisUrl, {
      keyPrefix: opts.redisKeyPrefix,
      commandTimeoutMs: opts.redisTimeoutMs,
      onStateChange: (up, reason) => {
        redisStats.counter(up ? "connected" : "disconnected").inc();
        if (up) log.info(`Redis: ${reason}`);
        else log.warn(`Redis: ${reason}`);
      },
    })
    : new MemoryStore();
  if (store instanceof RedisStore) await store.client.ready(1000);
  const registry = new Registry({
    store,
    stats,
    ttlMs: opts.ttlMs,
    sweepIntervalMs: opts.sweepIntervalMs,
    clock: opts.clock,
  });
  const hostname = opts.hostname ?? "127.0.0.1";
  let http: Deno.HttpServer<Deno.NetAddr>;
  try {
    http = Deno.serve(
      { hostname, port: opts.port, onListen: () => {} },
      discoveryHttpHandler(registry, { env: opts.env }),
    );
  } catch (e) {
    await store.close();
    throw e;
  }
  let grpc: GrpcEdsServer | undefined;
  let grpcPort: number | undefined;
  if (opts.grpcPort !== undefined) {
    grpc = new GrpcEdsServer(registry, opts.grpc);
    try {
      grpcPort = grpc.listen({ hostname, port: opts.grpcPort }).port;
    } catch (e) {
      await grpc.close();
      await http.shutdown();
      await store.close();
      throw e;
    }
  }
  registry.start();
  log.info(
    `Registry up (${store.kind} store, TTL ${registry.ttlMs / 1000}s, sweep every ` +
      `${registry.sweepIntervalMs / 1000}s, HTTP ${hostname}:${http.addr.port}` +
      `${grpcPort !== undefined ? `, gRPC EDS/ADS ${hostname}:${grpcPort}` : ""})`,
  );
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      await registry.close();
      await grpc?.close();
      await http.shutdown();
      await store.close();
    })();
  return { registry, port: http.addr.port, grpcPort, close, [Symbol.asyncDispose]: close };
}
