/** Config of envoy.filters.http.router (envoy.extensions.filters.http.router.v3.Router). */
import { z } from "zod";

const notSupported = z.any().refine(() => false, { message: "Field not supported by nuncio" }).optional();

/** The Router message. */
export const routerSchema = z.strictObject({
  dynamic_stats: z.boolean().optional(),
  suppress_envoy_headers: z.boolean().default(false),
  start_child_span: notSupported,
  upstream_log: notSupported,
  upstream_log_options: notSupported,
  strict_check_headers: notSupported,
  respect_expected_rq_timeout: z.boolean().default(false),
  suppress_grpc_request_failure_code_stats: z.boolean().optional(),
  upstream_http_filters: notSupported,
});

/** The parsed Router config. */
export type RouterConfig = z.infer<typeof routerSchema>;
