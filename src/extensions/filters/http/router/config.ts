/** Config of envoy.filters.http.router (envoy.extensions.filters.http.router.v3.Router). */
import { z } from "zod/mini";
import { onlyValues } from "../../../../config/schema_util.ts";

const notSupported = z.optional(
  z.any().check(z.refine(() => false, { message: "Field not supported by nuncio" })),
);

/** The Router message. */
export const routerSchema = z.strictObject({
  dynamic_stats: onlyValues([true], "the router always counts upstream_rq_<code> and upstream_rq_time"),
  suppress_envoy_headers: z._default(z.boolean(), false),
  start_child_span: z._default(z.boolean(), false),
  upstream_log: notSupported,
  upstream_log_options: notSupported,
  strict_check_headers: notSupported,
  respect_expected_rq_timeout: z._default(z.boolean(), false),
  suppress_grpc_request_failure_code_stats: onlyValues(
    [true],
    "the router never counts a local reply, such as an upstream timeout, in upstream_rq_<code>",
  ),
  upstream_http_filters: notSupported,
});

/** The parsed Router config. */
export type RouterConfig = z.infer<typeof routerSchema>;
