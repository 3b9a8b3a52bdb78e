/** Schema of the embedded rate-limit service's config (kept apart from the service so it loads cheaply). */
import { z } from "zod";
import { address, duration } from "../config/common.ts";

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
