/** zod schemas for envoy.config.route.v3.RouteMatch, HeaderMatcher and QueryParameterMatcher. */
import { z } from "zod/mini";
import { integer, notSupportedFields } from "../../config/schema_util.ts";
import { fractionalPercent } from "../../config/common.ts";
import { checkedRegex, checkedStringMatcher, exactlyOne } from "./config_util.ts";

const int64 = integer;

/** envoy.config.route.v3.HeaderMatcher. */
export const headerMatcherSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  exact_match: z.optional(z.string()),
  safe_regex_match: z.optional(checkedRegex),
  range_match: z.optional(z.strictObject({ start: z._default(int64, 0), end: z._default(int64, 0) })),
  present_match: z.optional(z.boolean()),
  prefix_match: z.optional(z.string().check(z.minLength(1))),
  suffix_match: z.optional(z.string().check(z.minLength(1))),
  contains_match: z.optional(z.string().check(z.minLength(1))),
  string_match: z.optional(checkedStringMatcher),
  invert_match: z.optional(z.boolean()),
  treat_missing_header_as_empty: z.optional(z.boolean()),
}).check(z.superRefine((v, ctx) =>
  exactlyOne(
    v,
    [
      "exact_match",
      "safe_regex_match",
      "range_match",
      "present_match",
      "prefix_match",
      "suffix_match",
      "contains_match",
      "string_match",
    ],
    ctx,
    false,
  )
));

/** The parsed form of a HeaderMatcher. */
export type HeaderMatcherConfig = z.infer<typeof headerMatcherSchema>;

/** envoy.config.route.v3.QueryParameterMatcher. */
export const queryParameterMatcherSchema = z.strictObject({
  name: z.string().check(z.minLength(1), z.maxLength(1024)),
  string_match: z.optional(checkedStringMatcher),
  present_match: z.optional(z.boolean()),
}).check(z.superRefine((v, ctx) => exactlyOne(v, ["string_match", "present_match"], ctx, false)));

/** The parsed form of a QueryParameterMatcher. */
export type QueryParameterMatcherConfig = z.infer<typeof queryParameterMatcherSchema>;

const PATH_SPECIFIERS = ["prefix", "path", "safe_regex", "path_separated_prefix"] as const;

/** envoy.config.route.v3.RouteMatch. */
export const routeMatchSchema = z.strictObject({
  prefix: z.optional(z.string()),
  path: z.optional(z.string()),
  safe_regex: z.optional(checkedRegex),
  path_separated_prefix: z.optional(z.string()),
  case_sensitive: z._default(z.boolean(), true),
  headers: z._default(z.array(headerMatcherSchema), []),
  query_parameters: z._default(z.array(queryParameterMatcherSchema), []),
  /** RuntimeFractionalPercent: the route also needs this share of requests (runtime key, else default_value). */
  runtime_fraction: z.optional(z.strictObject({
    default_value: fractionalPercent,
    runtime_key: z.optional(z.string()),
  })),
  /** GrpcRouteMatchOptions (no fields): only requests with a gRPC content-type match. */
  grpc: z.optional(z.strictObject({})),
  ...notSupportedFields([
    "connect_matcher",
    "path_match_policy",
    "tls_context",
    "dynamic_metadata",
    "filter_state",
    "cel_expression",
  ]),
}).check(z.superRefine((v, ctx) => {
  exactlyOne(v, PATH_SPECIFIERS, ctx);
  const p = v.path_separated_prefix;
  if (p !== undefined && !/^[^?#]+[^?#/]$/.test(p)) {
    ctx.addIssue({
      code: "custom",
      path: ["path_separated_prefix"],
      message: "Must not end with / and must not contain ? or #",
    });
  }
}));

/** The parsed form of a RouteMatch. */
export type RouteMatchConfig = z.infer<typeof routeMatchSchema>;
