import assert from "node:assert/strict";
import "../registry/builtin.ts";
import { bootstrapTracingSchema, hcmTracingSchema, routeTracingSchema } from "./config.ts";
import { compileRouteTracing } from "./http_tracing.ts";

function errors(
  schema: {
    safeParse(
      v: unknown,
    ): { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  v: unknown,
): string {
  const r = schema.safeParse(v);
  return r.success ? "" : r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
}

const zipkin = (extra: Record<string, unknown> = {}) => ({
  name: "envoy.tracers.zipkin",
  typed_config: {
    "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
    collector_cluster: "z",
    collector_endpoint: "/api/v2/spans",
    ...extra,
  },
});

Deno.test("tracing config: Envoy's shapes, unsupported fields named", async (t) => {
  await t.step("HCM tracing with a zipkin provider and custom tags", () => {
    const r = hcmTracingSchema.parse({
      client_sampling: { value: 50 },
      random_sampling: { value: 1.5 },
      max_path_tag_length: 64,
      verbose: true,
      spawn_upstream_span: true,
      custom_tags: [
        { tag: "a", literal: { value: "x" } },
        { tag: "b", environment: { name: "HOME" } },
        { tag: "c", request_header: { name: "x-c", default_value: "-" } },
        { tag: "d", metadata: { kind: { request: {} }, metadata_key: { key: "ns", path: [{ key: "k" }] } } },
      ],
      provider: zipkin(),
    });
    assert.equal(r.provider!.ext.name, "envoy.tracers.zipkin");
    assert.equal(r.provider!.config.shared_span_context, true);
    assert.equal(r.custom_tags.length, 4);
  });

  await t.step("errors name the field", () => {
    assert.match(
      errors(hcmTracingSchema, { provider: zipkin({ collector_endpoint_version: "HTTP_PROTO" }) }),
      /provider\.typed_config\.collector_endpoint_version: Field not supported by nuncio: only HTTP_JSON/,
    );
    assert.match(
      errors(hcmTracingSchema, {
        custom_tags: [{
          tag: "d",
          metadata: { kind: { route: {} }, metadata_key: { key: "ns", path: [{ key: "k" }] } },
        }],
      }),
      /custom_tags\.0\.metadata\.kind\.route: Field not supported by nuncio/,
    );
    assert.match(errors(hcmTracingSchema, { custom_tags: [{ tag: "x" }] }), /Exactly one of literal/);
    assert.match(
      errors(bootstrapTracingSchema, {
        http: {
          name: "envoy.tracers.opentelemetry",
          typed_config: {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            resource_detectors: [],
          },
        },
      }),
      /http\.typed_config\.resource_detectors: Field not supported by nuncio/,
    );
    assert.match(
      errors(bootstrapTracingSchema, { http: { name: "envoy.tracers.datadog" } }),
      /http\.name: Unknown or unsupported tracer "envoy\.tracers\.datadog"/,
    );
  });

  await t.step("a route's tracing replaces all three rates, each 100 % by default", () => {
    const rt = compileRouteTracing(routeTracingSchema.parse({
      random_sampling: { numerator: 25, denominator: "TEN_THOUSAND" },
      overall_sampling: { numerator: 500000, denominator: "MILLION" },
    }));
    assert.deepEqual(rt.rates, { client: 10000, random: 25, overall: 5000 });
  });
});
