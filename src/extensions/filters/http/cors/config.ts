/**
 * Config of envoy.filters.http.cors: the filter message (envoy.extensions.filters.http.cors.v3.Cors, empty) and
 * the policy (envoy.extensions.filters.http.cors.v3.CorsPolicy) set in typed_per_filter_config; the deprecated
 * envoy.config.route.v3.CorsPolicy of VirtualHost.cors and RouteAction.cors has the same fields and is parsed
 * by the same schema (the route configuration finds it through the registry).
 */
import { z } from "zod/mini";
import { checkedStringMatcher } from "../../../../http/routing/config_util.ts";
import { runtimeFractionalPercentSchema } from "../../common/config.ts";
import { CorsPolicy } from "./policy.ts";

/** The Cors filter message: no fields. */
export const corsSchema = z.strictObject({});

/** The parsed Cors config. */
export type CorsConfig = z.infer<typeof corsSchema>;

/** CorsPolicy's fields (proto3 strings default to "", wrappers stay unset). */
export const corsPolicyFieldsSchema = z.strictObject({
  allow_origin_string_match: z._default(z.array(checkedStringMatcher), []),
  allow_methods: z._default(z.string(), ""),
  allow_headers: z._default(z.string(), ""),
  expose_headers: z._default(z.string(), ""),
  max_age: z._default(z.string(), ""),
  allow_credentials: z.optional(z.boolean()),
  filter_enabled: z.optional(runtimeFractionalPercentSchema),
  shadow_enabled: z.optional(runtimeFractionalPercentSchema),
  allow_private_network_access: z.optional(z.boolean()),
  forward_not_matching_preflights: z.optional(z.boolean()),
});

/** A CorsPolicy, parsed and compiled (matchers built once, at config time). */
export const corsPolicySchema = z.pipe(corsPolicyFieldsSchema, z.transform((v) => new CorsPolicy(v)));
