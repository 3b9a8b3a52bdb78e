/** Config of envoy.filters.http.router (envoy.extensions.filters.http.router.v3.Router). */
import { z } from "zod/mini";
import "../../../../config/zod_setup.ts";

const notSupported = z.optional(
  z.any().check(z.refine(() => false, { message: "Field not supported by nuncio" })),
);

/** The Router message. */
export const routerSchema = z.strictObject({
  dynamic_stats: z.optional(z.boolean()),
  suppress_envoy_headers: z._default(z.boolean(), false),
  start_child_span: notSupported,
  upstream_log: notSupported,
  upstream_log_options: notSupported,
  strict_check_headers: notSupported,
  respect_expected_rq_timeout: z._default(z.boolean(), false),
  suppress_grpc_request_failure_code_stats: z.optional(z.boolean()),
  upstream_http_filters: notSupported,
});

/** The parsed Router config. */
export type RouterConfig = z.infer<typeof routerSchema>;
