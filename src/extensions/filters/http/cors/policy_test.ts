import assert from "node:assert/strict";
import "../../../../registry/builtin.ts";
import { testContext } from "../../../../access_log/test_util.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import { routeConfigurationSchema } from "../../../../http/routing/config.ts";
import { oneHost, req, table } from "../../../../http/routing/test_util.ts";
import { corsPolicySchema } from "./config.ts";
import { CORS_NAME, CorsFactory } from "./filter.ts";
import { EffectiveCors } from "./policy.ts";
import { setRuntime } from "../../../../runtime/current.ts";
import { staticLayerValues } from "../../../../runtime/layers.ts";
import { EMPTY_SNAPSHOT, RuntimeSnapshot } from "../../../../runtime/snapshot.ts";

const POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

/** One policy resolved alone. */
function eff(fields: Record<string, unknown>): EffectiveCors {
  return new EffectiveCors([corsPolicySchema.parse(fields)]);
}

/** Several policies, most specific first. */
function chain(...levels: Record<string, unknown>[]): EffectiveCors {
  return new EffectiveCors(levels.map((l) => corsPolicySchema.parse(l)));
}

Deno.test('cors origin matching: every StringMatcher kind, ignore_case, and Envoy\'s "*" rule', () => {
  const e = eff({
    allow_origin_string_match: [
      { exact: "https://a.example" },
      { prefix: "https://pre." },
      { suffix: ".suffix.io" },
      { contains: "middle" },
      { safe_regex: { regex: "https://[0-9]+\\.re\\.dev" } },
      { exact: "https://CASE.example", ignore_case: true },
    ],
  });
  for (
    const ok of [
      "https://a.example",
      "https://pre.anything",
      "http://x.suffix.io",
      "https://in-the-middle-of.it",
      "https://42.re.dev",
      "https://case.EXAMPLE",
    ]
  ) assert.ok(e.originAllowed(ok), ok);
  for (
    const bad of [
      "https://a.example.evil",
      "https://A.example",
      "http://pre.x",
      "https://x.suffix.io.evil",
      "https://42.re.dev.evil", // regexes match the whole origin
      "https://x.re.dev",
    ]
  ) assert.ok(!e.originAllowed(bad), bad);

  // a matcher that matches the string "*" allows every origin (the corpus writes `safe_regex: \*`)
  assert.ok(
    eff({ allow_origin_string_match: [{ safe_regex: { regex: "\\*" } }] }).originAllowed("https://any"),
  );
  assert.ok(eff({ allow_origin_string_match: [{ prefix: "*" }] }).originAllowed("null"));
  assert.ok(eff({ allow_origin_string_match: [{ exact: "*" }] }).originAllowed("http://x"));
  // no matcher: nothing is allowed
  assert.ok(!eff({}).originAllowed("https://a.example"));
});

Deno.test("cors preflight headers: Envoy's set and order, wildcards echo the request", () => {
  const e = eff({
    allow_origin_string_match: [{ exact: "https://a.example" }],
    allow_methods: "GET,POST",
    allow_headers: "content-type,x-custom",
    expose_headers: "x-exposed",
    max_age: "600",
    allow_credentials: true,
  });
  const rq = HeaderMap.from([["access-control-request-method", "PUT"]]);
  assert.deepEqual(e.preflightHeaders(rq, "https://a.example", true), [
    ["access-control-allow-origin", "https://a.example"],
    ["access-control-allow-credentials", "true"],
    ["access-control-allow-methods", "GET,POST"],
    ["access-control-allow-headers", "content-type,x-custom"],
    ["access-control-max-age", "600"],
  ]);
  // a non-matching origin answered locally (forward_not_matching_preflights false) gets no allow-origin
  assert.deepEqual(e.preflightHeaders(rq, "https://evil", false)[0], [
    "access-control-allow-credentials",
    "true",
  ]);

  const star = eff({ allow_methods: "*", allow_headers: "*", allow_private_network_access: true });
  const rq2 = HeaderMap.from([
    ["access-control-request-method", "DELETE"],
    ["access-control-request-headers", "x-a"],
    ["access-control-request-headers", "x-b"],
    ["access-control-request-private-network", "true"],
  ]);
  assert.deepEqual(star.preflightHeaders(rq2, "o", true), [
    ["access-control-allow-origin", "o"],
    ["access-control-allow-methods", "DELETE"],
    ["access-control-allow-headers", "x-a,x-b"],
    ["access-control-allow-private-network", "true"],
  ]);
  // private network access only when the request asks for it
  rq2.remove("access-control-request-private-network");
  assert.equal(star.preflightHeaders(rq2, "o", true).length, 3);
  // nothing configured: only the origin
  assert.deepEqual(eff({}).preflightHeaders(rq, "o", true), [["access-control-allow-origin", "o"]]);
});

Deno.test("cors actual-response headers: allow-origin, credentials and expose-headers replace upstream's", () => {
  const res = HeaderMap.from([["access-control-allow-origin", "*"], ["x-up", "1"]]);
  eff({ expose_headers: "x-up", allow_credentials: true }).applyToResponse(res, "https://a.example");
  assert.deepEqual(res.getAll("access-control-allow-origin"), ["https://a.example"]);
  assert.equal(res.get("access-control-allow-credentials"), "true");
  assert.equal(res.get("access-control-expose-headers"), "x-up");
  const plain = new HeaderMap();
  eff({ allow_credentials: false }).applyToResponse(plain, "o");
  assert.deepEqual(plain.names, ["access-control-allow-origin"]);
});

Deno.test("cors levels: each field from the most specific policy that sets it; enablement from the first", () => {
  const route = { allow_methods: "POST", allow_credentials: false, filter_enabled: { default_value: {} } };
  const vhost = {
    allow_origin_string_match: [{ exact: "https://vh" }],
    allow_methods: "GET",
    allow_headers: "x-vh",
    allow_credentials: true,
    forward_not_matching_preflights: false,
    shadow_enabled: { default_value: { numerator: 100 } },
  };
  const e = chain(route, vhost);
  assert.equal(e.allowMethods, "POST");
  assert.equal(e.allowHeaders, "x-vh");
  assert.equal(e.allowCredentials, false, "an explicit false on the route wins over the virtual host's true");
  assert.equal(e.forwardNotMatchingPreflights, false);
  assert.ok(e.originAllowed("https://vh"));
  assert.ok(!e.enabled.hit(), "filter_enabled 0 % on the route");
  assert.ok(!e.shadow.hit(), "shadow_enabled is not inherited from the virtual host");
  const d = chain({}, vhost);
  assert.ok(d.enabled.hit() && !d.shadow.hit(), "defaults: enabled, no shadow");
  assert.equal(d.forwardNotMatchingPreflights, false);
  assert.equal(chain({}).forwardNotMatchingPreflights, true, "Envoy's default");
});

Deno.test("cors filter_enabled and shadow_enabled read their runtime keys, else default_value", () => {
  const e = eff({
    filter_enabled: { default_value: { numerator: 100 }, runtime_key: "cors.t.enabled" },
    shadow_enabled: { default_value: { numerator: 0 }, runtime_key: "cors.t.shadow" },
  });
  assert.ok(e.enabled.hit() && !e.shadow.hit());
  try {
    setRuntime(
      new RuntimeSnapshot([{
        name: "static",
        values: staticLayerValues({
          cors: { t: { enabled: 0, shadow: { numerator: 1, denominator: "HUNDRED" } } },
        }),
      }], 1),
    );
    assert.ok(!e.enabled.hit(), "runtime 0 % overrides the default 100 %");
    setRuntime(
      new RuntimeSnapshot([{ name: "static", values: staticLayerValues({ cors: { t: { shadow: 100 } } }) }]),
    );
    assert.ok(e.enabled.hit() && e.shadow.hit(), "an integer percent; a missing key keeps the default");
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
  }
});

Deno.test("cors schema: CorsPolicy fields are checked with their paths", () => {
  const bad = corsPolicySchema.safeParse({
    allow_origin_string_match: [{ safe_regex: { regex: "(" } }, { exact: "a", prefix: "b" }],
    max_age: 60,
    bogus: 1,
  });
  assert.ok(!bad.success);
  const lines = bad.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  assert.ok(
    lines.some((l) => l.startsWith("allow_origin_string_match.0.safe_regex.regex: ")),
    lines.join("|"),
  );
  assert.ok(lines.some((l) => l.startsWith("allow_origin_string_match.1: Exactly one")), lines.join("|"));
  assert.ok(lines.some((l) => l.startsWith("max_age: ")), lines.join("|"));
  assert.ok(lines.some((l) => /bogus/.test(l)), lines.join("|"));
});

Deno.test("cors in route configurations: typed levels chain, the deprecated fields only without them", () => {
  const f = new CorsFactory(testContext(), CORS_NAME, "in");
  const typed = (extra: Record<string, unknown>) => ({ [CORS_NAME]: { "@type": POLICY, ...extra } });
  const t = table({
    name: "rc",
    typed_per_filter_config: typed({ max_age: "5" }),
    virtual_hosts: [{
      name: "vh",
      domains: ["typed"],
      typed_per_filter_config: typed({
        allow_origin_string_match: [{ exact: "https://vh" }],
        allow_methods: "GET",
      }),
      routes: [
        {
          match: { prefix: "/own" },
          route: { cluster: "c" },
          typed_per_filter_config: typed({ allow_methods: "PUT" }),
        },
        { match: { prefix: "/redirect" }, redirect: { host_redirect: "x" } },
        { match: { prefix: "/" }, route: { cluster: "c" } },
      ],
    }],
  });
  const legacy = table(oneHost([
    { match: { prefix: "/own" }, route: { cluster: "c", cors: { allow_headers: "x-route" } } },
    { match: { prefix: "/" }, route: { cluster: "c" } },
  ], { cors: { allow_origin_string_match: [{ exact: "https://legacy" }], allow_headers: "x-vh" } }));
  const at = (authority: string, path: string) =>
    f.settingsFor((authority === "legacy" ? legacy : t).match(req(path, { authority }))!)!;

  const own = at("typed", "/own");
  assert.equal(own.allowMethods, "PUT");
  assert.equal(own.maxAge, "5", "from the route configuration level");
  assert.ok(own.originAllowed("https://vh"));
  assert.equal(at("typed", "/other").allowMethods, "GET");
  assert.strictEqual(at("typed", "/own"), own, "resolved once per route");
  assert.equal(t.match(req("/redirect", { authority: "typed" }))!.kind, "redirect");

  assert.equal(at("legacy", "/own").allowHeaders, "x-route");
  assert.ok(at("legacy", "/own").originAllowed("https://legacy"), "route cors inherits the vhost's origins");
  assert.equal(at("legacy", "/x").allowHeaders, "x-vh");

  // a typed policy at any level hides the deprecated fields entirely (Envoy's rule)
  const mixed = table(
    oneHost([{ match: { prefix: "/" }, route: { cluster: "c", cors: { allow_methods: "X" } } }], {
      typed_per_filter_config: typed({ allow_methods: "GET" }),
    }),
  );
  assert.equal(f.settingsFor(mixed.match(req("/"))!)!.allowMethods, "GET");

  // no policy anywhere: nothing to do
  assert.equal(
    f.settingsFor(table(oneHost([{ match: { prefix: "/" }, route: { cluster: "c" } }])).match(req("/"))!),
    null,
  );
});

Deno.test("cors: the deprecated fields are checked with their paths", () => {
  const r = routeConfigurationSchema.safeParse({
    virtual_hosts: [{
      name: "vh",
      domains: ["*"],
      cors: { allow_origin: ["*"] },
      routes: [{
        match: { prefix: "/" },
        route: { cluster: "c", cors: { allow_origin_string_match: [{}] } },
      }],
    }],
  });
  assert.ok(!r.success);
  const lines = r.error.issues.map((i) => i.path.join("."));
  assert.ok(lines.includes("virtual_hosts.0.cors"), lines.join("|"));
  assert.ok(
    lines.includes("virtual_hosts.0.routes.0.route.cors.allow_origin_string_match.0"),
    lines.join("|"),
  );
});
