/**
 * Tracing config shapes shared by the HTTP connection manager, routes and the bootstrap: Envoy's
 * HttpConnectionManager.Tracing, envoy.type.tracing.v3.CustomTag, envoy.config.trace.v3.Tracing(.Http) and the
 * route's envoy.config.route.v3.Tracing. The provider is a `tracer` extension (registry lookup).
 */
import { z } from "zod/mini";
import { fractionalPercent, percent, uint32 } from "../config/common.ts";
import { typedExtension } from "../config/extension_ref.ts";
import { notSupported } from "../config/schema_util.ts";

const headerTag = z.strictObject({
  name: z.string().check(z.minLength(1)),
  default_value: z._default(z.string(), ""),
});

/** envoy.type.tracing.v3.CustomTag: literal, environment, request_header and request metadata. */
export const customTagSchema = z.strictObject({
  tag: z.string().check(z.minLength(1)),
  literal: z.optional(z.strictObject({ value: z.string().check(z.minLength(1)) })),
  environment: z.optional(headerTag),
  request_header: z.optional(headerTag),
  metadata: z.optional(z.strictObject({
    kind: z.strictObject({
      request: z.optional(z.strictObject({})),
      route: notSupported,
      cluster: notSupported,
      host: notSupported,
    }),
    metadata_key: z.strictObject({
      key: z.string().check(z.minLength(1)),
      path: z.array(z.strictObject({ key: z.string().check(z.minLength(1)) })).check(z.minLength(1)),
    }),
    default_value: z._default(z.string(), ""),
  })),
  value: notSupported,
}).check(z.superRefine((t, ctx) => {
  const n = [t.literal, t.environment, t.request_header, t.metadata].filter((x) => x !== undefined).length;
  if (n !== 1) {
    ctx.addIssue({
      code: "custom",
      message: "Exactly one of literal, environment, request_header or metadata is required",
    });
  }
}));

/** The parsed CustomTag. */
export type CustomTagConfig = z.infer<typeof customTagSchema>;

/** envoy.config.trace.v3.Tracing.Http: the provider, a `tracer` extension. */
export const tracingProviderSchema = typedExtension("tracer");

/** HttpConnectionManager.Tracing. */
export const hcmTracingSchema = z.strictObject({
  client_sampling: z.optional(percent),
  random_sampling: z.optional(percent),
  overall_sampling: z.optional(percent),
  verbose: z._default(z.boolean(), false),
  max_path_tag_length: z.optional(uint32),
  custom_tags: z._default(z.array(customTagSchema), []),
  provider: z.optional(tracingProviderSchema),
  spawn_upstream_span: z.optional(z.boolean()),
  // v2 fields Envoy reserved (operation_name comes from the listener's traffic_direction)
  operation_name: notSupported,
  request_headers_for_tags: notSupported,
});

/** The parsed HttpConnectionManager.Tracing. */
export type HcmTracingConfig = z.infer<typeof hcmTracingSchema>;

/** The bootstrap's envoy.config.trace.v3.Tracing (deprecated in Envoy, still honoured as the HCM's default). */
export const bootstrapTracingSchema = z.strictObject({
  http: z.optional(tracingProviderSchema),
});

/** The parsed bootstrap tracing. */
export type BootstrapTracingConfig = z.infer<typeof bootstrapTracingSchema>;

/** envoy.config.route.v3.Tracing: a route's sampling overrides and custom tags. */
export const routeTracingSchema = z.strictObject({
  client_sampling: z.optional(fractionalPercent),
  random_sampling: z.optional(fractionalPercent),
  overall_sampling: z.optional(fractionalPercent),
  custom_tags: z._default(z.array(customTagSchema), []),
});

/** The parsed route Tracing. */
export type RouteTracingConfig = z.infer<typeof routeTracingSchema>;

/** A Percent (0-100) as parts per 10 000; `def` when absent. */
export function percentPer10k(p: { value: number } | undefined, def: number): number {
  return p === undefined ? def : Math.round(p.value * 100);
}

/** A FractionalPercent as parts per 10 000 (MILLION rounds down to that resolution); `def` when absent. */
export function fractionPer10k(
  p: { numerator: number; denominator: "HUNDRED" | "TEN_THOUSAND" | "MILLION" } | undefined,
  def: number,
): number {
  if (p === undefined) return def;
  const n = p.denominator === "HUNDRED"
    ? p.numerator * 100
    : p.denominator === "MILLION"
    ? p.numerator / 100
    : p.numerator;
  return Math.min(10000, n);
}
