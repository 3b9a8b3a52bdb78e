/**
 * envoy.config.metrics.v3.StatsConfig (the bootstrap's `stats_config`): tag specifiers, the stats matcher and
 * histogram bucket settings; `compileStatsConfig` turns a parsed one into what stores and outputs use.
 */
import { z } from "zod/mini";
import { double } from "../config/schema_util.ts";
import { notSupportedFields } from "../config/schema_util.ts";
import { checkedStringMatcher } from "../http/routing/config_util.ts";
import { StringMatch } from "../http/routing/matchers.ts";
import { SUPPORTED_BUCKETS } from "./store.ts";
import { hasDefaultTag, TagProducer } from "./tags.ts";

/** envoy.config.metrics.v3.TagSpecifier: a regex (first group cut, second the value) or a fixed value. */
export const tagSpecifierSchema = z.strictObject({
  tag_name: z.string().check(z.minLength(1)),
  regex: z.optional(z.string().check(z.maxLength(1024))),
  fixed_value: z.optional(z.string()),
}).check(z.superRefine((t, ctx) => {
  if (t.regex !== undefined && t.fixed_value !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["fixed_value"],
      message: "Only one of regex and fixed_value may be set",
    });
    return;
  }
  if (t.fixed_value !== undefined) return;
  if (t.regex === undefined || t.regex === "") {
    if (!hasDefaultTag(t.tag_name)) {
      ctx.addIssue({
        code: "custom",
        path: ["tag_name"],
        message: `No regex specified for tag specifier and no default regex for name: '${t.tag_name}'`,
      });
    }
    return;
  }
  try {
    new RegExp(t.regex);
  } catch (e) {
    ctx.addIssue({ code: "custom", path: ["regex"], message: `Invalid regex: ${(e as Error).message}` });
  }
}));

/** envoy.type.matcher.v3.ListStringMatcher. */
const listStringMatcher = z.strictObject({ patterns: z.array(checkedStringMatcher).check(z.minLength(1)) });

/** envoy.config.metrics.v3.StatsMatcher: exactly one of reject_all, exclusion_list, inclusion_list. */
export const statsMatcherSchema = z.strictObject({
  reject_all: z.optional(z.boolean()),
  exclusion_list: z.optional(listStringMatcher),
  inclusion_list: z.optional(listStringMatcher),
}).check(z.refine(
  (m) => [m.reject_all, m.exclusion_list, m.inclusion_list].filter((x) => x !== undefined).length === 1,
  { message: "Exactly one of reject_all, exclusion_list, inclusion_list must be set" },
));

/** envoy.config.metrics.v3.HistogramBucketSettings. */
export const histogramBucketSettingsSchema = z.strictObject({
  match: checkedStringMatcher,
  buckets: z.array(double.check(z.gt(0))).check(
    z.minLength(1),
    z.refine((b) => new Set(b).size === b.length, { message: "Bucket bounds must be unique" }),
  ),
  ...notSupportedFields(["bins"]),
});

/** envoy.config.metrics.v3.StatsConfig. */
export const statsConfigSchema = z.strictObject({
  stats_tags: z._default(z.array(tagSpecifierSchema), []),
  use_all_default_tags: z.optional(z.boolean()),
  stats_matcher: z.optional(statsMatcherSchema),
  histogram_bucket_settings: z._default(z.array(histogramBucketSettingsSchema), []),
}).check(z.superRefine((c, ctx) => {
  const seen = new Set<string>();
  c.stats_tags.forEach((t, i) => {
    if (seen.has(t.tag_name)) {
      ctx.addIssue({
        code: "custom",
        path: ["stats_tags", i, "tag_name"],
        message: `Tag name '${t.tag_name}' specified twice`,
      });
    }
    seen.add(t.tag_name);
  });
}));

/** The parsed stats_config. */
export type StatsConfig = z.output<typeof statsConfigSchema>;

/** stats_config compiled: the tag producer, the matcher and the bucket rules. */
export interface CompiledStatsConfig {
  readonly tags: TagProducer;
  /** True for a stat name the matcher rejects; undefined when every stat is instantiated. */
  readonly rejects: ((name: string) => boolean) | undefined;
  /** Bucket bounds (ascending) for a histogram of that name. */
  readonly bucketsFor: ((name: string) => readonly number[]) | undefined;
}

/** Compiles a parsed stats_config (absent: Envoy's defaults); runs once per event loop at start. */
export function compileStatsConfig(c: StatsConfig | undefined): CompiledStatsConfig {
  if (c === undefined) return { tags: new TagProducer(), rejects: undefined, bucketsFor: undefined };
  const tags = new TagProducer({ useAllDefaultTags: c.use_all_default_tags, statsTags: c.stats_tags });
  return {
    tags,
    rejects: compileMatcher(c.stats_matcher),
    bucketsFor: compileBuckets(c.histogram_bucket_settings),
  };
}

/** Envoy's StatsMatcherImpl: reject_all, any exclusion pattern matching, or no inclusion pattern matching. */
function compileMatcher(m: StatsConfig["stats_matcher"]): ((name: string) => boolean) | undefined {
  if (m === undefined) return undefined;
  if (m.reject_all !== undefined) return m.reject_all ? () => true : undefined;
  if (m.exclusion_list) {
    const ps = m.exclusion_list.patterns.map((p) => StringMatch.from(p));
    return (name) => ps.some((p) => p.match(name));
  }
  const ps = m.inclusion_list!.patterns.map((p) => StringMatch.from(p));
  return (name) => !ps.some((p) => p.match(name));
}

function compileBuckets(
  rules: StatsConfig["histogram_bucket_settings"],
): ((name: string) => readonly number[]) | undefined {
  if (rules.length === 0) return undefined;
  const compiled = rules.map((r) => ({
    match: StringMatch.from(r.match),
    buckets: [...r.buckets].sort((a, b) => a - b) as readonly number[],
  }));
  // the original stat name (before tag extraction), first matching rule wins
  return (name) => compiled.find((r) => r.match.match(name))?.buckets ?? SUPPORTED_BUCKETS;
}
