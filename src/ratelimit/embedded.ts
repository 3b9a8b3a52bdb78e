/**
 * Embedded mode: the bootstrap section that runs the rate-limit service inside the proxy process (main
 * thread), and its mapping onto `startRatelimitService`. A nuncio extension, not part of Envoy's bootstrap:
 *
 *   ratelimit_service:
 *     limits_path: config/ratelimit.yaml      # file or directory
 *     redis_url: redis://127.0.0.1:6379       # optional; memory counters without it
 *     redis_failure_mode: open                # open | closed
 *     grpc_address: { socket_address: { address: 127.0.0.1, port_value: 8081 } }
 *     http_address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }   # optional
 *     watch_interval: 1s
 *     shadow_mode: false
 *
 * Data-plane workers reach it like any RLS: a STATIC cluster pointing at grpc_address.
 */
import { z } from "zod";
import { address, duration } from "../config/common.ts";
import type { StatsStore } from "../stats/store.ts";
import { type RatelimitHandle, type RatelimitServiceOptions, startRatelimitService } from "./run.ts";

/** Schema of the `ratelimit_service` bootstrap section. */
export const embeddedRatelimitSchema = z.strictObject({
  limits_path: z.string().min(1),
  redis_url: z.string().regex(/^redis:\/\//, "Expected a redis:// URL").optional(),
  redis_failure_mode: z.enum(["open", "closed"]).optional(),
  redis_timeout: duration.optional(),
  redis_key_prefix: z.string().optional(),
  grpc_address: address,
  http_address: address.optional(),
  watch_interval: duration.optional(),
  shadow_mode: z.boolean().optional(),
});

/** The parsed section. */
export type EmbeddedRatelimitConfig = z.output<typeof embeddedRatelimitSchema>;

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

/** Runs at proxy start (main thread): starts the embedded service; close the handle at shutdown. */
export function startEmbeddedRatelimit(
  c: EmbeddedRatelimitConfig,
  stats?: StatsStore,
): Promise<RatelimitHandle> {
  return startRatelimitService(embeddedOptions(c, stats));
}
