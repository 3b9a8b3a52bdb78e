/** Shared zod schemas for Envoy v3 value types (durations, addresses, percents, typed_config). */
import { z } from "zod/mini";
import { NOT_SUPPORTED } from "./errors.ts";
import {
  double,
  envoyEnum,
  integer,
  notSupportedFields,
  onlyValues,
  transformWithIssues,
} from "./schema_util.ts";

const DURATION_RE = /^(-?\d+(?:\.\d{1,9})?)s$/;

/** Parses Envoy's duration forms ("1s", "0.25s", {seconds, nanos}) into milliseconds; undefined when invalid. */
export function parseDurationMs(v: unknown): number | undefined {
  if (typeof v === "string") {
    const m = DURATION_RE.exec(v.trim());
    if (!m) return undefined;
    const ms = Number(m[1]) * 1000;
    return ms >= 0 ? ms : undefined;
  }
  if (v && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== "seconds" && k !== "nanos") return undefined;
    const s = o.seconds ?? 0;
    const n = o.nanos ?? 0;
    const sec = typeof s === "string" && /^\d+$/.test(s) ? Number(s) : s;
    if (typeof sec !== "number" || typeof n !== "number" || !Number.isInteger(sec) || !Number.isInteger(n)) {
      return undefined;
    }
    if (sec < 0 || n < 0 || n > 999_999_999) return undefined;
    return sec * 1000 + n / 1e6;
  }
  return undefined;
}

/** A google.protobuf.Duration in JSON/YAML form; parses to milliseconds. */
export const duration = z.pipe(
  z.unknown(),
  transformWithIssues((v, ctx) => {
    const ms = parseDurationMs(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: 'Invalid duration: expected a string like "1s" or "0.25s", or {seconds, nanos}',
      });
      return z.NEVER;
    }
    return ms;
  }),
);

/** A uint32 (also google.protobuf.UInt32Value, which is a bare number in JSON), number or decimal string. */
export const uint32: typeof integer = integer.check(z.minimum(0), z.maximum(4294967295));

/** A uint64 given as number or decimal string. */
export const uint64: typeof integer = integer.check(z.minimum(0));

/** envoy.config.core.v3.SocketAddress. */
export const socketAddress = z.strictObject({
  protocol: z.optional(
    envoyEnum(["TCP", "UDP"]).check(z.refine((p) => p === "TCP", {
      error: `${NOT_SUPPORTED}: only TCP (nuncio has no UDP listeners or upstreams)`,
    })),
  ),
  address: z.string().check(z.minLength(1)),
  port_value: integer.check(z.minimum(0), z.maximum(65535)),
  resolver_name: onlyValues([""], "addresses resolve with the system resolver"),
  // Deno binds "::" dual-stack where the system allows it (net.ipv6.bindv6only=0) and cannot set IPV6_V6ONLY
  ipv4_compat: onlyValues([true], 'an IPv6 "::" listener also accepts IPv4 where the system allows it'),
});

/** envoy.config.core.v3.Address (only socket_address is supported). */
export const address = z.strictObject({
  socket_address: socketAddress,
  ...notSupportedFields(["pipe", "envoy_internal_address"]),
});

/** The parsed form of an Address. */
export type SocketAddress = z.infer<typeof socketAddress>;

/** envoy.type.v3.Percent (a proto3 double: absent, as the wire leaves a 0, is 0). */
export const percent = z.strictObject({ value: z._default(double.check(z.minimum(0), z.maximum(100)), 0) });

/** envoy.type.v3.FractionalPercent (proto3 scalars: an absent numerator is 0, an absent denominator HUNDRED). */
export const fractionalPercent = z.strictObject({
  numerator: z._default(uint32, 0),
  denominator: z._default(envoyEnum(["HUNDRED", "TEN_THOUSAND", "MILLION"]), "HUNDRED"),
});

/** A typed_config Any: "@type" plus the message fields, validated later by the owning extension. */
export const typedAny = z.looseObject({ "@type": z.string().check(z.minLength(1)) });

/** envoy.config.core.v3.HeaderValueOption (request/response_headers_to_add). */
export const headerValueOption = z.strictObject({
  header: z.strictObject({ key: z.string().check(z.minLength(1)), value: z._default(z.string(), "") }),
  append: z.optional(z.boolean()),
  append_action: z.optional(envoyEnum([
    "APPEND_IF_EXISTS_OR_ADD",
    "ADD_IF_ABSENT",
    "OVERWRITE_IF_EXISTS_OR_ADD",
    "OVERWRITE_IF_EXISTS",
  ])),
  keep_empty_value: z.optional(z.boolean()),
});

/** The parsed form of a HeaderValueOption. */
export type HeaderValueOption = z.infer<typeof headerValueOption>;

/** envoy.type.matcher.v3.RegexMatcher (google_re2 engine; JavaScript RegExp semantics). */
export const regexMatcher = z.strictObject({
  google_re2: z.optional(z.strictObject({ max_program_size: z.optional(uint32) })),
  regex: z.string(),
});

/** envoy.type.matcher.v3.StringMatcher. */
export const stringMatcher = z.strictObject({
  exact: z.optional(z.string()),
  prefix: z.optional(z.string()),
  suffix: z.optional(z.string()),
  contains: z.optional(z.string()),
  safe_regex: z.optional(regexMatcher),
  ignore_case: z.optional(z.boolean()),
}).check(
  z.refine(
    (m) =>
      [m.exact, m.prefix, m.suffix, m.contains, m.safe_regex].filter((x) => x !== undefined).length === 1,
    {
      message: "Exactly one of exact, prefix, suffix, contains, safe_regex must be set",
    },
  ),
);

/** The parsed form of a StringMatcher. */
export type StringMatcherConfig = z.infer<typeof stringMatcher>;
