/** The ExtAuthz and ExtAuthzPerRoute schemas: Envoy's defaults, oneofs and the fields nuncio rejects by name. */
import assert from "node:assert/strict";
import { extAuthzPerRouteSchema, extAuthzSchema } from "./config.ts";

const HTTP = { server_uri: { uri: "ext_authz", cluster: "authz", timeout: "0.25s" } };
const GRPC = { envoy_grpc: { cluster_name: "authz" } };

function issues(v: unknown): string[] {
  const r = extAuthzSchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

Deno.test("ext_authz config: defaults and the corpus http_service", () => {
  const c = extAuthzSchema.parse({
    http_service: {
      ...HTTP,
      authorization_response: { allowed_upstream_headers: { patterns: [{ exact: "x-current-user" }] } },
    },
  });
  assert.equal(c.http_service!.server_uri.timeout, 250);
  assert.equal(c.http_service!.path_prefix, "");
  assert.equal(c.failure_mode_allow, false);
  assert.equal(c.charge_cluster_response_stats, true);
  assert.equal(c.stat_prefix, "");
  const g = extAuthzSchema.parse({ grpc_service: { ...GRPC, timeout: "1s" }, transport_api_version: "V3" });
  assert.equal(g.grpc_service!.timeout, 1000);
});

Deno.test("ext_authz config: rejected shapes", () => {
  assert.deepEqual(issues({}), [": Exactly one of grpc_service, http_service must be set"]);
  assert.deepEqual(issues({ grpc_service: GRPC, http_service: HTTP, transport_api_version: "V3" }), [
    "http_service: Exactly one of grpc_service, http_service must be set",
  ]);
  assert.match(issues({ grpc_service: GRPC })[0], /^transport_api_version: V2 \(and AUTO\)/);
  assert.match(issues({ grpc_service: GRPC, transport_api_version: "AUTO" })[0], /^transport_api_version/);
  assert.deepEqual(issues({ http_service: { server_uri: { uri: "u", cluster: "c" } } }).length, 1);
  assert.match(
    issues({ http_service: HTTP, typed_metadata_context_namespaces: ["a"] })[0],
    /typed_metadata_context_namespaces: Field not supported by nuncio/,
  );
  assert.deepEqual(issues({ http_service: HTTP, metadata_context_namespaces: ["a"] }), []);
  assert.match(
    issues({ grpc_service: { ...GRPC, initial_metadata: [] }, transport_api_version: "V3" })[0],
    /initial_metadata/,
  );
  assert.match(
    issues({
      http_service: { ...HTTP, authorization_request: { allowed_headers: { patterns: [{ exact: "a" }] } } },
      allowed_headers: { patterns: [{ exact: "b" }] },
    })[0],
    /allowed_headers: Invalid duplicate configuration/,
  );
  assert.match(
    issues({ http_service: HTTP, with_request_body: { max_request_bytes: 0 } })[0],
    /max_request_bytes/,
  );
  assert.match(
    issues({ http_service: HTTP, enforce_response_header_limits: true })[0],
    /Field not supported by nuncio/,
  );
  assert.match(
    issues({
      http_service: { ...HTTP, authorization_request: { headers_to_add: [{ key: "x", value: "%NOPE%" }] } },
    })[0],
    /headers_to_add\.0\.value/,
  );
});

Deno.test("ext_authz per-route config", () => {
  assert.deepEqual(extAuthzPerRouteSchema.parse({ disabled: true }), { disabled: true });
  const cs = extAuthzPerRouteSchema.parse({ check_settings: { context_extensions: { a: "b" } } });
  assert.deepEqual(cs.check_settings, {
    context_extensions: { a: "b" },
    disable_request_body_buffering: false,
  });
  assert.ok(!extAuthzPerRouteSchema.safeParse({}).success);
  assert.ok(!extAuthzPerRouteSchema.safeParse({ disabled: true, check_settings: {} }).success);
  assert.ok(
    !extAuthzPerRouteSchema.safeParse({
      check_settings: { disable_request_body_buffering: true, with_request_body: { max_request_bytes: 10 } },
    }).success,
  );
  assert.ok(!extAuthzPerRouteSchema.safeParse({ check_settings: { grpc_service: GRPC } }).success);
});
