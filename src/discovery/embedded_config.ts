/** Schema of the embedded registry's typed_config (kept apart from the registry so it loads cheaply). */
import { z } from "zod/mini";
import { address, duration } from "../config/common.ts";
import { parseRedisUrl } from "../ratelimit/redis_address.ts";
import type { DiscoveryServiceOptions } from "./run.ts";

const redisUrl = z.string().check(z.refine((s) => {
  if (!/^redis:\/\//.test(s)) return false;
  try {
    parseRedisUrl(s);
    return true;
  } catch {
    return false;
  }
}, { error: "Expected a redis://[user:pass@]host:port[/db] URL" }));

const positive = duration.check(z.refine((ms) => ms >= 1, { error: "Expected a positive duration" }));

/** `type.googleapis.com/nuncio.discovery.v1.EmbeddedRegistry`. */
export const embeddedRegistrySchema = z.strictObject({
  /** The registry's HTTP port (v1 API, REST EDS, /healthcheck, /stats); port 0 picks one. */
  address,
  /** A host not checked in for this long is expired (default 600s). */
  ttl: z.optional(positive),
  /** How often expired hosts are removed (default 30s; 0s: never). */
  sweep_interval: z.optional(duration),
  /** The `env` of v1 answers (default production). */
  env: z.optional(z.string().check(z.minLength(1))),
  /** Hosts in Redis (shared with other registry replicas); absent: in memory, lost at restart. */
  redis: z.optional(z.strictObject({
    url: redisUrl,
    key_prefix: z.optional(z.string()),
    timeout: z.optional(positive),
  })),
});

/** The parsed typed_config. */
export type EmbeddedRegistryConfig = z.output<typeof embeddedRegistrySchema>;

/** The service options a parsed config stands for. */
export function embeddedRegistryOptions(c: EmbeddedRegistryConfig): DiscoveryServiceOptions {
  const o: DiscoveryServiceOptions = {
    hostname: c.address.socket_address.address,
    port: c.address.socket_address.port_value,
  };
  if (c.ttl !== undefined) o.ttlMs = c.ttl;
  if (c.sweep_interval !== undefined) o.sweepIntervalMs = c.sweep_interval;
  if (c.env !== undefined) o.env = c.env;
  if (c.redis) {
    o.redisUrl = c.redis.url;
    if (c.redis.key_prefix !== undefined) o.redisKeyPrefix = c.redis.key_prefix;
    if (c.redis.timeout !== undefined) o.redisTimeoutMs = c.redis.timeout;
  }
  return o;
}
