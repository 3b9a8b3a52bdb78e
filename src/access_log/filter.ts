/**
 * Access log filters (envoy.config.accesslog.v3.AccessLogFilter): status_code_filter, duration_filter (their
 * value's runtime_key read from the runtime at each decision), response_flag_filter, runtime_filter (sampling:
 * from the x-request-id unless use_independent_randomness, so every hop samples the same requests), and_filter,
 * or_filter. Other filter kinds are config errors.
 */
import { z } from "zod/mini";
import { envoyEnum, transformWithIssues } from "../config/schema_util.ts";
import type { Clock } from "../common/clock.ts";
import { formatResponseFlags, ResponseFlag } from "../common/response_flags.ts";
import type { StreamInfo } from "../common/stream_info.ts";
import { fractionalPercent, uint32 } from "../config/common.ts";
import { runtime } from "../runtime/current.ts";
import { requestIdToInteger } from "../runtime/request_id.ts";
import { DENOMINATORS } from "../runtime/snapshot.ts";

/** Short flag name -> bit, derived from the shared response flag table. */
const FLAG_BITS: ReadonlyMap<string, number> = new Map(
  Object.values(ResponseFlag).map((bit) => [formatResponseFlags(bit), bit]),
);

const comparison = z.strictObject({
  op: z._default(envoyEnum(["EQ", "GE", "LE", "NE"]), "EQ"),
  value: z.strictObject({
    default_value: z._default(uint32, 0),
    runtime_key: z.string().check(z.minLength(1)),
  }),
});

/** The parsed form of an access log filter. */
export type AccessLogFilterConfig =
  | { kind: "status_code" | "duration"; op: "EQ" | "GE" | "LE" | "NE"; value: number; runtimeKey: string }
  | { kind: "response_flag"; mask: number }
  | { kind: "runtime"; key: string; numerator: number; denominator: number; independent: boolean }
  | { kind: "and" | "or"; filters: AccessLogFilterConfig[] };

const UNSUPPORTED_FILTERS = [
  "not_health_check_filter",
  "traceable_filter",
  "header_filter",
  "grpc_status_filter",
  "extension_filter",
  "metadata_filter",
  "log_type_filter",
];

/** Schema of one AccessLogFilter (exactly one filter field). */
export const accessLogFilterSchema: z.ZodMiniType<AccessLogFilterConfig> = z.lazy(() =>
  z.pipe(
    z.strictObject({
      status_code_filter: z.optional(z.strictObject({ comparison })),
      duration_filter: z.optional(z.strictObject({ comparison })),
      response_flag_filter: z.optional(z.strictObject({ flags: z._default(z.array(z.string()), []) })),
      runtime_filter: z.optional(z.strictObject({
        runtime_key: z.string().check(z.minLength(1)),
        percent_sampled: z.optional(fractionalPercent),
        use_independent_randomness: z._default(z.boolean(), false),
      })),
      and_filter: z.optional(
        z.strictObject({ filters: z.array(accessLogFilterSchema).check(z.minLength(2)) }),
      ),
      or_filter: z.optional(
        z.strictObject({ filters: z.array(accessLogFilterSchema).check(z.minLength(2)) }),
      ),
      ...Object.fromEntries(UNSUPPORTED_FILTERS.map((k) => [k, z.optional(z.unknown())])),
    }),
    transformWithIssues((v, ctx): AccessLogFilterConfig => {
      const set = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
      if (set.length !== 1) {
        ctx.addIssue({ code: "custom", message: "Exactly one filter type must be set" });
        return z.NEVER;
      }
      const key = set[0];
      if (UNSUPPORTED_FILTERS.includes(key)) {
        ctx.addIssue({ code: "custom", path: [key], message: "Filter not supported by nuncio" });
        return z.NEVER;
      }
      if (v.status_code_filter) {
        const c = v.status_code_filter.comparison;
        return {
          kind: "status_code",
          op: c.op,
          value: c.value.default_value,
          runtimeKey: c.value.runtime_key,
        };
      }
      if (v.duration_filter) {
        const c = v.duration_filter.comparison;
        return { kind: "duration", op: c.op, value: c.value.default_value, runtimeKey: c.value.runtime_key };
      }
      if (v.response_flag_filter) {
        let mask = 0;
        const flags = v.response_flag_filter.flags;
        for (let i = 0; i < flags.length; i++) {
          const bit = FLAG_BITS.get(flags[i]);
          if (bit === undefined) {
            ctx.addIssue({
              code: "custom",
              path: ["response_flag_filter", "flags", i],
              message: `Unknown or unsupported response flag "${flags[i]}"`,
            });
            return z.NEVER;
          }
          mask |= bit;
        }
        return { kind: "response_flag", mask };
      }
      if (v.runtime_filter) {
        const r = v.runtime_filter;
        return {
          kind: "runtime",
          key: r.runtime_key,
          // absent: protobuf's zero value, 0 %
          numerator: r.percent_sampled?.numerator ?? 0,
          denominator: DENOMINATORS[r.percent_sampled?.denominator ?? "HUNDRED"],
          independent: r.use_independent_randomness,
        };
      }
      if (v.and_filter) return { kind: "and", filters: v.and_filter.filters };
      return { kind: "or", filters: v.or_filter!.filters };
    }),
  )
) as unknown as z.ZodMiniType<AccessLogFilterConfig>;

/** A compiled filter: true means "log this entry". */
export interface AccessLogFilter {
  /** Decides for one finished stream. */
  evaluate(info: StreamInfo): boolean;
}

function compare(op: string, actual: number, expected: number): boolean {
  switch (op) {
    case "GE":
      return actual >= expected;
    case "LE":
      return actual <= expected;
    case "NE":
      return actual !== expected;
    default:
      return actual === expected;
  }
}

class StatusCodeFilter implements AccessLogFilter {
  constructor(readonly op: string, readonly value: number, readonly key: string) {}
  evaluate(info: StreamInfo): boolean {
    return compare(this.op, info.responseCode, runtime().getInteger(this.key, this.value));
  }
}

class DurationFilter implements AccessLogFilter {
  constructor(readonly op: string, readonly value: number, readonly key: string, readonly clock: Clock) {}
  evaluate(info: StreamInfo): boolean {
    const d = Math.floor(info.durationMs(this.clock.monotonic()));
    return compare(this.op, d, runtime().getInteger(this.key, this.value));
  }
}

/**
 * runtime_filter (Envoy's RuntimeFilter): logs when `random % denominator < runtime(key, numerator)`, where the
 * random value is the x-request-id's integer (its first 8 hex digits) unless use_independent_randomness, or when
 * the request has no usable id.
 */
class RuntimeFilter implements AccessLogFilter {
  constructor(
    readonly key: string,
    readonly numerator: number,
    readonly denominator: number,
    readonly independent: boolean,
  ) {}
  evaluate(info: StreamInfo): boolean {
    const den = this.denominator;
    const id = this.independent ? undefined : requestIdToInteger(info.requestHeaders?.get("x-request-id"));
    const r = id === undefined ? Math.floor(Math.random() * den) : id % den;
    return runtime().featureEnabledBuckets(this.key, this.numerator, r, den);
  }
}

class ResponseFlagFilter implements AccessLogFilter {
  constructor(readonly mask: number) {}
  evaluate(info: StreamInfo): boolean {
    // No flags listed: any flag matches (Envoy's rule).
    return this.mask === 0 ? info.responseFlags !== 0 : (info.responseFlags & this.mask) !== 0;
  }
}

class AndFilter implements AccessLogFilter {
  constructor(readonly filters: AccessLogFilter[]) {}
  evaluate(info: StreamInfo): boolean {
    for (const f of this.filters) if (!f.evaluate(info)) return false;
    return true;
  }
}

class OrFilter implements AccessLogFilter {
  constructor(readonly filters: AccessLogFilter[]) {}
  evaluate(info: StreamInfo): boolean {
    for (const f of this.filters) if (f.evaluate(info)) return true;
    return false;
  }
}

/** Builds the filter object for a parsed config (config time). */
export function compileFilter(cfg: AccessLogFilterConfig, clock: Clock): AccessLogFilter {
  switch (cfg.kind) {
    case "status_code":
      return new StatusCodeFilter(cfg.op, cfg.value, cfg.runtimeKey);
    case "duration":
      return new DurationFilter(cfg.op, cfg.value, cfg.runtimeKey, clock);
    case "runtime":
      return new RuntimeFilter(cfg.key, cfg.numerator, cfg.denominator, cfg.independent);
    case "response_flag":
      return new ResponseFlagFilter(cfg.mask);
    case "and":
      return new AndFilter(cfg.filters.map((f) => compileFilter(f, clock)));
    case "or":
      return new OrFilter(cfg.filters.map((f) => compileFilter(f, clock)));
  }
}
