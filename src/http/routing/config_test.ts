import assert from "node:assert/strict";
import { routeConfigurationSchema, virtualHostSchema } from "./config.ts";

/** Parses and returns the issues as "path: message" lines. */
function issues(input: unknown): string[] {
  const r = routeConfigurationSchema.safeParse(input);
  assert.equal(r.success, false, "expected a config error");
  return r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

function hasIssue(input: unknown, path: string, message: RegExp): void {
  const list = issues(input);
  assert.ok(
    list.some((l) => l.startsWith(path + ": ") && message.test(l)),
    `no ${path} ~ ${message} in ${list.join(" | ")}`,
  );
}

const vh = (routes: unknown[], extra: Record<string, unknown> = {}) => ({
  virtual_hosts: [{ name: "vh", domains: ["*"], routes, ...extra }],
});
const r = (extra: Record<string, unknown>) => ({ match: { prefix: "/" }, route: { cluster: "c" }, ...extra });

Deno.test("route configuration schema", async (t) => {
  await t.step("a full config parses with defaults", () => {
    const c = routeConfigurationSchema.parse({
      name: "local",
      validate_clusters: false,
      virtual_hosts: [{
        name: "vh",
        domains: ["*"],
        typed_per_filter_config: {
          "envoy.filters.http.x": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            is_optional: true,
            config: { "@type": "type.googleapis.com/x" },
          },
        },
        routes: [
          { match: { prefix: "/" }, route: { cluster: "c", timeout: "1.5s" } },
          { match: { path: "/r" }, redirect: { https_redirect: true } },
          { match: { safe_regex: { google_re2: {}, regex: "/d/.*" } }, direct_response: { status: 200 } },
        ],
      }],
    });
    assert.equal(c.name, "local");
    assert.equal(c.most_specific_header_mutations_wins, false);
    const routes = c.virtual_hosts[0].routes;
    assert.equal(routes[0].match.case_sensitive, true);
    assert.equal(routes[0].route?.timeout, 1500);
    assert.equal(routes[1].redirect?.response_code, 301);
    assert.equal(virtualHostSchema.parse({ name: "v", domains: ["a"] }).require_tls, "NONE");
  });
  await t.step("unknown fields are errors", () => {
    hasIssue({ bogus: 1 }, "", /nrecognized|nknown/);
    hasIssue(
      vh([r({ match: { prefix: "/", bogus: true } })]),
      "virtual_hosts.0.routes.0.match",
      /nrecognized|nknown/,
    );
  });
  await t.step("unsupported Envoy fields say so, at their path", () => {
    const ns = /Field not supported by nuncio/;
    hasIssue({ vhds: {} }, "vhds", ns);
    hasIssue(vh([], { hedge_policy: {} }), "virtual_hosts.0.hedge_policy", ns);
    hasIssue(vh([], { require_tls: "ALL" }), "virtual_hosts.0.require_tls", ns);
    hasIssue(
      vh([r({ match: { prefix: "/", tls_context: {} } })]),
      "virtual_hosts.0.routes.0.match.tls_context",
      ns,
    );
    hasIssue(vh([r({ match: { prefix: "/", grpc: { x: 1 } } })]), "virtual_hosts.0.routes.0.match.grpc", /x/);
    hasIssue(
      vh([r({ route: { cluster: "c", retry_policy: { retry_priority: {} } } })]),
      "virtual_hosts.0.routes.0.route.retry_policy.retry_priority",
      ns,
    );
    hasIssue(
      vh([r({ route: { cluster: "c", request_mirror_policies: [{ cluster: "m", trace_sampled: true }] } })]),
      "virtual_hosts.0.routes.0.route.request_mirror_policies.0.trace_sampled",
      ns,
    );
    hasIssue(
      vh([r({ route: { cluster: "c", retry_policy: { retry_on: "5xx,bogus" } } })]),
      "virtual_hosts.0.routes.0.route.retry_policy.retry_on",
      /Unknown retry_on condition "bogus"/,
    );
    hasIssue(
      vh([r({ tracing: { custom_tags: [{ tag: "t", value: "%REQ(x)%" }] } })]),
      "virtual_hosts.0.routes.0.tracing.custom_tags.0.value",
      ns,
    );
    hasIssue(vh([r({ decorator: {} })]), "virtual_hosts.0.routes.0.decorator.operation", /string/);
  });
  await t.step("oneofs", () => {
    hasIssue(
      vh([{ match: { prefix: "/", path: "/a" }, route: { cluster: "c" } }]),
      "virtual_hosts.0.routes.0.match.path",
      /Only one of/,
    );
    hasIssue(
      vh([{ match: {}, route: { cluster: "c" } }]),
      "virtual_hosts.0.routes.0.match",
      /Exactly one of/,
    );
    hasIssue(vh([{ match: { prefix: "/" } }]), "virtual_hosts.0.routes.0", /Exactly one of route, redirect/);
    hasIssue(
      vh([r({ route: { cluster: "c", cluster_header: "x" } })]),
      "virtual_hosts.0.routes.0.route.cluster_header",
      /Only one/,
    );
    hasIssue(
      vh([
        r({
          route: {
            cluster: "c",
            prefix_rewrite: "/",
            regex_rewrite: { pattern: { regex: "a" }, substitution: "" },
          },
        }),
      ]),
      "virtual_hosts.0.routes.0.route.regex_rewrite",
      /Only one/,
    );
  });
  await t.step("bad regexes are errors on their path", () => {
    hasIssue(
      vh([{ match: { safe_regex: { regex: "(" } }, route: { cluster: "c" } }]),
      "virtual_hosts.0.routes.0.match.safe_regex.regex",
      /Invalid regex/,
    );
    hasIssue(
      vh([r({ match: { prefix: "/", headers: [{ name: "x", safe_regex_match: { regex: "[" } }] } })]),
      "virtual_hosts.0.routes.0.match.headers.0.safe_regex_match.regex",
      /Invalid regex/,
    );
    hasIssue(
      vh([
        r({
          match: {
            prefix: "/",
            query_parameters: [{ name: "q", string_match: { safe_regex: { regex: "*" } } }],
          },
        }),
      ]),
      "virtual_hosts.0.routes.0.match.query_parameters.0.string_match.safe_regex.regex",
      /Invalid regex/,
    );
    hasIssue(
      vh([r({ route: { cluster: "c", regex_rewrite: { pattern: { regex: "(a)" }, substitution: "\\2" } } })]),
      "virtual_hosts.0.routes.0.route.regex_rewrite.substitution",
      /group/,
    );
  });
  await t.step("duplicate domains across virtual hosts", () => {
    hasIssue(
      { virtual_hosts: [{ name: "a", domains: ["x.com"] }, { name: "b", domains: ["y.com", "X.COM"] }] },
      "virtual_hosts.1.domains.1",
      /also in virtual host "a"/,
    );
    hasIssue(
      { virtual_hosts: [{ name: "a", domains: ["*"] }, { name: "b", domains: ["*"] }] },
      "virtual_hosts.1.domains.0",
      /also/,
    );
    hasIssue(
      { virtual_hosts: [{ name: "a", domains: ["a.*.com"] }] },
      "virtual_hosts.0.domains.0",
      /wildcard/,
    );
  });
  await t.step("header mutations: pseudo-headers and Host, formatters, append + append_action", () => {
    hasIssue(
      vh([r({ request_headers_to_remove: ["Host"] })]),
      "virtual_hosts.0.routes.0.request_headers_to_remove.0",
      /may not be modified/,
    );
    hasIssue(
      { response_headers_to_remove: [":status"] },
      "response_headers_to_remove.0",
      /may not be modified/,
    );
    hasIssue(
      vh([], { request_headers_to_add: [{ header: { key: ":path", value: "/" } }] }),
      "virtual_hosts.0.request_headers_to_add.0.header.key",
      /may not/,
    );
    hasIssue(
      { request_headers_to_add: [{ header: { key: "x", value: "%BOGUS%" } }] },
      "request_headers_to_add.0.header.value",
      /Unsupported/,
    );
    hasIssue(
      { request_headers_to_add: [{ header: { key: "x", value: "50% off" } }] },
      "request_headers_to_add.0.header.value",
      /Invalid/,
    );
    hasIssue(
      {
        request_headers_to_add: [{
          header: { key: "x", value: "v" },
          append: true,
          append_action: "ADD_IF_ABSENT",
        }],
      },
      "request_headers_to_add.0.append",
      /Both/,
    );
  });
  await t.step("weighted clusters", () => {
    hasIssue(
      vh([r({ route: { weighted_clusters: { clusters: [{ name: "a", weight: 0 }] } } })]),
      "virtual_hosts.0.routes.0.route.weighted_clusters.clusters",
      /greater than 0/,
    );
    hasIssue(
      vh([r({ route: { weighted_clusters: { clusters: [{ name: "a", weight: 30 }], total_weight: 100 } } })]),
      "virtual_hosts.0.routes.0.route.weighted_clusters.total_weight",
      /must equal/,
    );
  });
  await t.step("direct response body sources and size limit", () => {
    hasIssue(
      vh([{
        match: { prefix: "/" },
        direct_response: { status: 200, body: { filename: "/nonexistent/file" } },
      }]),
      "virtual_hosts.0.routes.0.direct_response.body.filename",
      /Cannot read/,
    );
    hasIssue(
      vh([{
        match: { prefix: "/" },
        direct_response: { status: 200, body: { inline_string: "x".repeat(4097) } },
      }]),
      "virtual_hosts.0.routes.0.direct_response.body",
      /over max_direct_response_body_size_bytes/,
    );
    hasIssue(
      vh([{ match: { prefix: "/" }, direct_response: { status: 600 } }]),
      "virtual_hosts.0.routes.0.direct_response.status",
      /./,
    );
    hasIssue(
      vh([{ match: { prefix: "/" }, direct_response: { status: 200, body: { environment_variable: "X" } } }]),
      "virtual_hosts.0.routes.0.direct_response.body.environment_variable",
      /not supported/,
    );
  });
  await t.step("path_separated_prefix shape and bad durations", () => {
    hasIssue(
      vh([{ match: { path_separated_prefix: "/a/" }, route: { cluster: "c" } }]),
      "virtual_hosts.0.routes.0.match.path_separated_prefix",
      /end with/,
    );
    hasIssue(
      vh([r({ route: { cluster: "c", timeout: "15" } })]),
      "virtual_hosts.0.routes.0.route.timeout",
      /duration/,
    );
  });
});
