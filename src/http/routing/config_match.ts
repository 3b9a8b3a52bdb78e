/** zod schemas for envoy.config.route.v3.RouteMatch, HeaderMatcher and QueryParameterMatcher. */
import { z } from "zod";
import { notSupportedFields } from "../../config/schema_util.ts";
import { checkedRegex, checkedStringMatcher, exactlyOne } from "./config_util.ts";

const int64 = z.union([z.number().int(), z.string().regex(/^-?\d+$/).transform(Number)]);

/** envoy.config.route.v3.HeaderMatcher. */
export const headerMatcherSchema = z.strictObject({
  name: z.string().min(1),
  exact_match: z.string().optional(),
  safe_regex_match: checkedRegex.optional(),
  range_match: z.strictObject({ start: int64.default(0), end: int64.default(0) }).optional(),
  present_match: z.boolean().optional(),
  prefix_match: z.string().min(1).optional(),
  suffix_match: z.string().min(1).optional(),
  contains_match: z.string().min(1).optional(),
  string_match: checkedStringMatcher.optional(),
  invert_match: z.boolean().optional(),
  treat_missing_header_as_empty: z.boolean().optional(),
}).superRefine((v, ctx) =>
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
);

/** The parsed form of a HeaderMatcher. */
export type HeaderMatcherConfig = z.infer<typeof headerMatcherSchema>;

/** envoy.config.route.v3.QueryParameterMatcher. */
export const queryParameterMatcherSchema = z.strictObject({
  name: z.string().min(1).max(1024),
  string_match: checkedStringMatcher.optional(),
  present_match: z.boolean().optional(),
}).superRefine((v, ctx) => exactlyOne(v, ["string_match", "present_match"], ctx, false));

/** The parsed form of a QueryParameterMatcher. */
export type QueryParameterMatcherConfig = z.infer<typeof queryParameterMatcherSchema>;

const PATH_SPECIFIERS = ["prefix", "path", "safe_regex", "path_separated_prefix"] as const;

/** envoy.config.route.v3.RouteMatch. */
export const routeMatchSchema = z.strictObject({
  prefix: z.string().optional(),
  path: z.string().optional(),
  safe_regex: checkedRegex.optional(),
  path_separated_prefix: z.string().optional(),
  case_sensitive: z.boolean().default(true),
  headers: z.array(headerMatcherSchema).default([]),
  query_parameters: z.array(queryParameterMatcherSchema).default([]),
  ...notSupportedFields([
    "connect_matcher",
    "path_match_policy",
    "runtime_fraction",
    "grpc",
    "tls_context",
    "dynamic_metadata",
    "filter_state",
    "cel_expression",
  ]),
}).superRefine((v, ctx) => {
  exactlyOne(v, PATH_SPECIFIERS, ctx);
  const p = v.path_separated_prefix;
  if (p !== undefined && !/^[^?#]+[^?#/]$/.test(p)) {
    ctx.addIssue({
      code: "custom",
      path: ["path_separated_prefix"],
      message: "Must not end with / and must not contain ? or #",
    });
  }
});

/** The parsed form of a RouteMatch. */
export type RouteMatchConfig = z.infer<typeof routeMatchSchema>;
