/** Config pieces shared by the HTTP and network filters: token buckets, runtime percents, per-route lookup. */
import { z } from "zod/mini";
import { duration, fractionalPercent, uint32 } from "../../../config/common.ts";
import type { HttpFilterCallbacks } from "../../../http/filter.ts";
import type { PerFilterConfig } from "../../../http/routing/types.ts";
import type { TokenBucketSpec } from "./token_bucket.ts";

/** envoy.type.v3.TokenBucket; parses to a TokenBucketSpec (fill_interval at least 50 ms, as Envoy requires). */
export const tokenBucketSchema = z.pipe(
  z.strictObject({
    max_tokens: uint32.check(z.minimum(1)),
    tokens_per_fill: z._default(uint32.check(z.minimum(1)), 1),
    fill_interval: duration,
  }).check(z.superRefine((v, ctx) => {
    if (v.fill_interval < 50) {
      ctx.addIssue({
        code: "custom",
        path: ["fill_interval"],
        message: "fill_interval must be at least 50ms",
      });
    }
  })),
  z.transform((v): TokenBucketSpec => ({
    maxTokens: v.max_tokens,
    tokensPerFill: v.tokens_per_fill,
    fillIntervalMs: v.fill_interval,
  })),
);

/** envoy.config.core.v3.RuntimeFractionalPercent; runtime overrides are not implemented, default_value applies. */
export const runtimeFractionalPercentSchema = z.strictObject({
  default_value: fractionalPercent,
  runtime_key: z.optional(z.string()),
});

/** envoy.config.core.v3.RuntimeFeatureFlag; runtime overrides are not implemented, default_value applies. */
export const runtimeFeatureFlagSchema = z.strictObject({
  default_value: z.boolean(),
  runtime_key: z.string().check(z.minLength(1)),
});

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** A FractionalPercent resolved once: `hit()` draws a random number per call. */
export class Fraction {
  /** Always true (numerator >= denominator). */
  readonly always: boolean;
  /** Always false (numerator 0). */
  readonly never: boolean;
  constructor(readonly numerator: number, readonly denominator: number) {
    this.always = numerator >= denominator;
    this.never = numerator <= 0;
  }
  /** Builds from a parsed FractionalPercent; `fallback` when absent. */
  static of(
    p: { numerator: number; denominator: keyof typeof DENOMINATORS } | undefined,
    fallback: number,
  ): Fraction {
    return p ? new Fraction(p.numerator, DENOMINATORS[p.denominator]) : new Fraction(fallback, 100);
  }
  /** True for `numerator / denominator` of the calls. */
  hit(): boolean {
    if (this.always) return true;
    if (this.never) return false;
    return Math.floor(Math.random() * this.denominator) < this.numerator;
  }
  /** True for `min(numerator, this.numerator) / denominator` of the calls (header-given percentages). */
  hitCapped(numerator: number): boolean {
    const n = numerator < this.numerator ? numerator : this.numerator;
    if (n <= 0) return false;
    if (n >= this.denominator) return true;
    return Math.floor(Math.random() * this.denominator) < n;
  }
}

/**
 * The most specific typed_per_filter_config entry of the stream's route for filter `name`, or undefined
 * (one map lookup per request).
 */
export function perRouteConfig(cb: HttpFilterCallbacks, name: string): PerFilterConfig | undefined {
  const route = cb.route();
  if (route === null) return undefined;
  const m = route.perFilterConfig;
  return m.size === 0 ? undefined : m.get(name) as PerFilterConfig | undefined;
}
