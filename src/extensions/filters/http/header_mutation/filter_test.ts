import assert from "node:assert/strict";
import "../../../../registry/builtin.ts";
import { testContext } from "../../../../access_log/test_util.ts";
import { StreamInfo } from "../../../../common/stream_info.ts";
import type { HttpFilterCallbacks, HttpRequest } from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import { ctx, req, table } from "../../../../http/routing/test_util.ts";
import type { RouteEntry } from "../../../../http/routing/types.ts";
import { headerMutationSchema } from "./config.ts";
import { HEADER_MUTATION_NAME, HeaderMutationFactory } from "./filter.ts";

const PER_ROUTE =
  "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute";

/** Runs the filter over one request and response; returns both header maps. */
function run(
  config: unknown,
  reqHeaders: [string, string][],
  resHeaders: [string, string][],
  route?: RouteEntry,
) {
  const f = new HeaderMutationFactory(
    headerMutationSchema.parse(config),
    testContext(),
    HEADER_MUTATION_NAME,
  );
  const request: HttpRequest = {
    method: "GET",
    path: "/p",
    authority: "example.com",
    scheme: "http",
    protocol: "HTTP/1.1",
    headers: HeaderMap.from(reqHeaders),
    contentLength: 0,
  };
  const cb = {
    streamInfo: new StreamInfo(),
    request,
    route: () => route ?? null,
    routeContext: () => ctx(),
  } as unknown as HttpFilterCallbacks;
  const filter = f.createFilter(cb);
  filter.decodeHeaders!(true);
  const res = { status: 200, headers: HeaderMap.from(resHeaders) };
  filter.encodeHeaders!(res, true);
  return { req: [...request.headers], res: [...res.headers] };
}

const add = (key: string, value: string, extra: Record<string, unknown> = {}) => ({
  append: { header: { key, value }, ...extra },
});

Deno.test("header_mutation", async (t) => {
  await t.step("append actions, remove, remove_on_match, formatters, both ways", () => {
    const r = run({
      mutations: {
        request_mutations: [
          add("x-added", "1"),
          add("x-added", "2"),
          add("x-absent", "a", { append_action: "ADD_IF_ABSENT" }),
          add("x-present", "new", { append_action: "ADD_IF_ABSENT" }),
          add("x-over", "o", { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" }),
          add("x-none", "n", { append_action: "OVERWRITE_IF_EXISTS" }),
          add("x-legacy", "l", { append: false }),
          add("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %REQ(:PATH)%"),
          add("x-empty", ""),
          add("x-keep", "", { keep_empty_value: true }),
          { remove: "X-Secret" },
          { remove_on_match: { key_matcher: { prefix: "x-debug-" } } },
        ],
        response_mutations: [
          add("x-res", "%REQ(x-added)%"),
          { remove: "server" },
        ],
      },
    }, [
      ["x-present", "old"],
      ["x-over", "1"],
      ["x-over", "2"],
      ["x-legacy", "old"],
      ["x-secret", "s"],
      ["x-debug-a", "1"],
      ["x-debug-b", "2"],
    ], [["server", "origin"], ["x-origin", "o"]]);
    assert.deepEqual(r.req, [
      ["x-present", "old"],
      ["x-over", "o"],
      ["x-legacy", "l"],
      ["x-added", "1"],
      ["x-added", "2"],
      ["x-absent", "a"],
      ["x-client", "10.0.0.1 /p"],
      ["x-keep", ""],
    ]);
    assert.deepEqual(r.res, [["x-origin", "o"], ["x-res", "1"]]);
  });

  await t.step("route levels: most specific first, or last with most_specific_header_mutations_wins", () => {
    const level = (v: string) => ({
      [HEADER_MUTATION_NAME]: {
        "@type": PER_ROUTE,
        mutations: {
          request_mutations: [add("x-level", v, { append_action: "OVERWRITE_IF_EXISTS_OR_ADD" })],
        },
      },
    });
    const rt = table({
      name: "rc",
      typed_per_filter_config: level("config"),
      virtual_hosts: [{
        name: "vh",
        domains: ["*"],
        typed_per_filter_config: level("vhost"),
        routes: [{
          match: { prefix: "/" },
          route: { cluster: "c" },
          typed_per_filter_config: level("route"),
        }],
      }],
    });
    const route = rt.match(req("/"))!;
    const filterLevel = { mutations: { request_mutations: [add("x-level", "filter")] } };
    // without: route, vhost, config in that order, each overwriting: the least specific (config) wins
    assert.deepEqual(run(filterLevel, [], [], route).req, [["x-level", "config"]]);
    assert.deepEqual(
      run({ ...filterLevel, most_specific_header_mutations_wins: true }, [], [], route).req,
      [["x-level", "route"]],
    );
  });

  await t.step("config checks", () => {
    const issues = (c: unknown) => {
      const r = headerMutationSchema.safeParse(c);
      assert.ok(!r.success);
      return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("|");
    };
    const req1 = (m: unknown) => ({ mutations: { request_mutations: [m] } });
    assert.match(issues(req1({})), /Exactly one of remove, append, remove_on_match/);
    assert.match(issues(req1({ remove: "a", append: { header: { key: "b" } } })), /Only one of/);
    assert.match(issues(req1(add(":path", "/x"))), /not supported by nuncio/);
    assert.match(issues(req1({ remove: "host" })), /not supported by nuncio/);
    assert.match(issues(req1(add("x", "%BOGUS%"))), /BOGUS/);
    assert.match(
      issues(req1(add("x", "v", { append: true, append_action: "ADD_IF_ABSENT" }))),
      /Both append/,
    );
    assert.match(issues({ mutations: { query_parameter_mutations: [] } }), /not supported/);
  });
});
