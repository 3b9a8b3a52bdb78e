/** Schema of the embedded rate-limit service's config (kept apart from the service so it loads cheaply). */
import { z } from "zod/mini";
import { address, duration } from "../config/common.ts";

/** Schema of the `ratelimit_service` bootstrap section. */
export const embeddedRatelimitSchema = z.strictObject({
  limits_path: z.string().check(z.minLength(1)),
  redis_url: z.optional(z.string().check(z.regex(/^redis:\/\//, "Expected a redis:// URL"))),
  redis_failure_mode: z.optional(z.enum(["open", "closed"])),
  redis_timeout: z.optional(duration),
  redis_key_prefix: z.optional(z.string()),
  grpc_address: address,
  http_address: z.optional(address),
  watch_interval: z.optional(duration),
  shadow_mode: z.optional(z.boolean()),
});

/** The parsed section. */
export type EmbeddedRatelimitConfig = z.output<typeof embeddedRatelimitSchema>;
