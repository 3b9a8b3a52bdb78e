/**
 * Embedded mode: runs the rate-limit service inside the proxy process (main thread), configured as the
 * `nuncio.bootstrap.ratelimit_service` entry of the bootstrap's `bootstrap_extensions` (bootstrap_extension.ts);
 * its typed_config:
 *
 *     limits_path: config/ratelimit.yaml      # file or directory
 *     redis_url: redis://127.0.0.1:6379       # optional; memory counters without it
 *     redis_failure_mode: open                # open | closed
 *     grpc_address: { socket_address: { address: 127.0.0.1, port_value: 8081 } }
 *     http_address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }   # optional
 *     watch_interval: 1s
 *     shadow_mode: false
 *
 * Data-plane workers reach it like any RLS: a STATIC cluster pointing at grpc_address. A data plane on the
 * same thread (`--concurrency 1`) whose cluster picks that address calls the service directly (local.ts).
 */
import type { StatsStore } from "../stats/store.ts";
import { type RatelimitHandle, type RatelimitServiceOptions, startRatelimitService } from "./run.ts";
import { registerLocalRateLimitService } from "./local.ts";

export { type EmbeddedRatelimitConfig, embeddedRatelimitSchema } from "./embedded_config.ts";
import type { EmbeddedRatelimitConfig } from "./embedded_config.ts";

/** Maps the parsed section onto service options (gRPC and HTTP bind addresses must agree when both are set). */
export function embeddedOptions(c: EmbeddedRatelimitConfig, stats?: StatsStore): RatelimitServiceOptions {
  const g = c.grpc_address.socket_address;
  const h = c.http_address?.socket_address;
  if (h && h.address !== g.address) {
    throw new Error("ratelimit_service.http_address must use the same address as grpc_address");
  }
  return {
    limitsPath: c.limits_path,
    redisUrl: c.redis_url,
    failureMode: c.redis_failure_mode,
    redisTimeoutMs: c.redis_timeout,
    redisKeyPrefix: c.redis_key_prefix,
    hostname: g.address,
    grpcPort: g.port_value,
    httpPort: h?.port_value,
    watchIntervalMs: c.watch_interval,
    shadowMode: c.shadow_mode,
    stats,
  };
}

/**
 * Runs at proxy start (main thread): starts the embedded service and registers it by its gRPC address for
 * direct calls from this thread's filters; close the handle at shutdown (which unregisters it first).
 */
export async function startEmbeddedRatelimit(
  c: EmbeddedRatelimitConfig,
  stats?: StatsStore,
): Promise<RatelimitHandle> {
  const o = embeddedOptions(c, stats);
  const handle = await startRatelimitService(o);
  if (handle.grpcPort === undefined) return handle;
  const unregister = registerLocalRateLimitService(o.hostname!, handle.grpcPort, handle.service);
  const close = () => {
    unregister();
    return handle.close();
  };
  return { ...handle, close, [Symbol.asyncDispose]: close };
}
