/** Config pieces shared by the HTTP and network filters: token buckets, runtime percents, per-route lookup. */
import { z } from "zod/mini";
import { duration, fractionalPercent, uint32 } from "../../../config/common.ts";
import type { HttpFilterCallbacks } from "../../../http/filter.ts";
import type { PerFilterConfig } from "../../../http/routing/types.ts";
import type { TokenBucketSpec } from "./token_bucket.ts";
import { runtime } from "../../../runtime/current.ts";

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

/** envoy.config.core.v3.RuntimeFractionalPercent: the runtime's value of runtime_key, else default_value. */
export const runtimeFractionalPercentSchema = z.strictObject({
  default_value: fractionalPercent,
  runtime_key: z.optional(z.string()),
});

/** envoy.config.core.v3.RuntimeFeatureFlag: the runtime's boolean at runtime_key, else default_value. */
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
 * A RuntimeFractionalPercent resolved once (Envoy's Runtime::FractionalPercent): `enabled()` draws against the
 * runtime's value of its key (a FractionalPercent, or an integer percent of 100) and falls back to the default;
 * absent from the config, `fallbackPercent` of 100 applies.
 */
export class RuntimeFraction {
  readonly key: string;
  readonly numerator: number;
  readonly denominator: number;
  readonly #fixed: Fraction;

  constructor(
    p:
      | { default_value: { numerator: number; denominator: keyof typeof DENOMINATORS }; runtime_key?: string }
      | undefined,
    fallbackPercent: number,
  ) {
    this.key = p?.runtime_key ?? "";
    this.#fixed = Fraction.of(p?.default_value, fallbackPercent);
    this.numerator = this.#fixed.numerator;
    this.denominator = this.#fixed.denominator;
  }

  /** True for the runtime's (else the default) share of the calls; one draw per call. */
  enabled(): boolean {
    return this.key === ""
      ? this.#fixed.hit()
      : runtime().fractionEnabled(this.key, this.numerator, this.denominator);
  }
}

/** A RuntimeFeatureFlag (Envoy's Runtime::FeatureFlag): the runtime's boolean at its key, else the default. */
export class RuntimeFlag {
  constructor(readonly key: string, readonly defaultValue: boolean) {}

  /** Builds from a parsed RuntimeFeatureFlag; `fallback` when the config has none. */
  static of(p: { default_value: boolean; runtime_key: string } | undefined, fallback: boolean): RuntimeFlag {
    return p ? new RuntimeFlag(p.runtime_key, p.default_value) : new RuntimeFlag("", fallback);
  }

  /** The flag's value now. */
  enabled(): boolean {
    return this.key === "" ? this.defaultValue : runtime().getBoolean(this.key, this.defaultValue);
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
