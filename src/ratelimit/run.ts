/**
 * Assembles a running rate-limit service (counter store, limits loader with reload, gRPC and HTTP ports).
 * Used by `nuncio ratelimit` (cli.ts) and by the proxy to run the service in-process (embedded mode).
 */
import type { Clock } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import { StatsStore } from "../stats/store.ts";
import { type CounterBackend, MemoryBackend } from "./backend.ts";
import { SHOULD_RATE_LIMIT_PATH } from "./rls_proto.ts";
import { type GrpcServer, startGrpcServer } from "./grpc_server.ts";
import { ratelimitHttpHandler } from "./http.ts";
import { LimitsLoader } from "./loader.ts";
import { RedisBackend } from "./redis_backend.ts";
import { type FailureMode, RateLimitService } from "./service.ts";

const log = new Logger("ratelimit");

/** How to run the service; the embedded bootstrap section maps onto this one to one. */
export interface RatelimitServiceOptions {
  /** A limits file, or a directory of them (one domain per file). */
  limitsPath: string;
  /** `redis://[user:pass@]host:port[/db]`; absent: in-memory counters. */
  redisUrl?: string;
  /** What to answer while the counter store fails (default "open"). */
  failureMode?: FailureMode;
  /** Address to bind (default 127.0.0.1). */
  hostname?: string;
  /** gRPC (h2c) port; 0 picks one; absent: no gRPC port. */
  grpcPort?: number;
  /** HTTP port for /healthcheck, /rlconfig, /stats, /json; 0 picks one; absent: none. */
  httpPort?: number;
  /** Limits file poll interval (default 1000 ms; 0: no reload). */
  watchIntervalMs?: number;
  /** Global shadow mode. */
  shadowMode?: boolean;
  /** Near-limit ratio (default 0.8). */
  nearLimitRatio?: number;
  /** Prefix of every Redis key. */
  redisKeyPrefix?: string;
  /** Redis command timeout (default 1000 ms). */
  redisTimeoutMs?: number;
  /** Stats store to count in (embedded: the proxy's main-thread store); default a new one. */
  stats?: StatsStore;
  clock?: Clock;
}

/** A running service. */
export interface RatelimitHandle extends AsyncDisposable {
  readonly service: RateLimitService;
  readonly loader: LimitsLoader;
  /** Bound gRPC port, when started. */
  readonly grpcPort?: number;
  /** Bound HTTP port, when started. */
  readonly httpPort?: number;
  /** True when the first load succeeded. */
  readonly loaded: boolean;
  /** Stops the ports, the reload poller and the counter store. */
  close(): Promise<void>;
}

/** Starts the service; a bad limits file at start is logged and reported by /healthcheck (500), not thrown. */
export async function startRatelimitService(opts: RatelimitServiceOptions): Promise<RatelimitHandle> {
  const stats = opts.stats ?? new StatsStore();
  const backend: CounterBackend = opts.redisUrl
    ? new RedisBackend(opts.redisUrl, {
      stats,
      keyPrefix: opts.redisKeyPrefix,
      commandTimeoutMs: opts.redisTimeoutMs,
    })
    : new MemoryBackend({ clock: opts.clock });
  const service = new RateLimitService({
    backend,
    stats,
    clock: opts.clock,
    failureMode: opts.failureMode,
    shadowMode: opts.shadowMode,
    nearLimitRatio: opts.nearLimitRatio,
  });
  const loader = new LimitsLoader(opts.limitsPath, service, { watchIntervalMs: opts.watchIntervalMs });
  const loaded = await loader.load();
  loader.start();
  if (backend instanceof RedisBackend) await backend.client.ready(1000);
  const hostname = opts.hostname ?? "127.0.0.1";
  let grpc: GrpcServer | undefined;
  let http: Deno.HttpServer<Deno.NetAddr> | undefined;
  try {
    if (opts.grpcPort !== undefined) {
      const handle = (msg: Uint8Array) => service.handleShouldRateLimit(msg);
      grpc = await startGrpcServer({
        hostname,
        port: opts.grpcPort,
        methods: { [SHOULD_RATE_LIMIT_PATH]: handle },
      });
    }
    if (opts.httpPort !== undefined) {
      http = Deno.serve(
        { hostname, port: opts.httpPort, onListen: () => {} },
        ratelimitHttpHandler(service, loader),
      );
    }
  } catch (e) {
    await grpc?.close();
    await loader.stop();
    await backend.close();
    throw e;
  }
  log.info(
    `Rate limit service up (${backend.kind} counters, failure mode ${service.failureMode}` +
      `${grpc ? `, gRPC ${hostname}:${grpc.port}` : ""}${
        http ? `, HTTP ${hostname}:${http.addr.port}` : ""
      })`,
  );
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      await loader.stop();
      await grpc?.close();
      if (http) await http.shutdown();
      await backend.close();
    })();
  return {
    service,
    loader,
    grpcPort: grpc?.port,
    httpPort: http?.addr.port,
    loaded,
    close,
    [Symbol.asyncDispose]: close,
  };
}
