import assert from "node:assert/strict";
import "../../../../registry/builtin.ts";
import { testContext } from "../../../../access_log/test_util.ts";
import { StreamInfo } from "../../../../common/stream_info.ts";
import type { HttpFilterCallbacks, HttpRequest } from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import { ctx, oneHost, req, table } from "../../../../http/routing/test_util.ts";
import type { RouteEntry } from "../../../../http/routing/types.ts";
import { headerToMetadataPerRouteSchema, headerToMetadataSchema } from "./config.ts";
import { HEADER_TO_METADATA_NAME, HeaderToMetadataFactory } from "./filter.ts";

const TYPE = "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config";

/** A stream of `headers` on `route` (callbacks as the connection manager gives them, minus what is unused). */
function stream(headers: [string, string][], route: RouteEntry | null = null) {
  const request: HttpRequest = {
    method: "GET",
    path: "/",
    authority: "example.com",
    scheme: "http",
    protocol: "HTTP/1.1",
    headers: HeaderMap.from(headers),
    contentLength: 0,
  };
  const streamInfo = new StreamInfo();
  const cb = {
    streamInfo,
    request,
    route: () => route,
    routeContext: () => ctx(),
  } as unknown as HttpFilterCallbacks;
  return { cb, request, streamInfo };
}

function run(config: unknown, headers: [string, string][], response?: [number, [string, string][]]) {
  const context = testContext();
  const f = new HeaderToMetadataFactory(
    headerToMetadataSchema.parse(config),
    context,
    HEADER_TO_METADATA_NAME,
  );
  const s = stream(headers);
  const filter = f.createFilter(s.cb);
  filter.decodeHeaders!(true);
  if (response) filter.encodeHeaders!({ status: response[0], headers: HeaderMap.from(response[1]) }, true);
  const stat = (n: string) => context.stats.counters.get(`http_filter_name.h2m.${n}`)?.value ?? 0;
  return { ...s, stat };
}

const lbRule = (extra: Record<string, unknown> = {}) => ({
  header: "x-canary",
  on_header_present: { metadata_namespace: "envoy.lb", key: "canary", ...extra },
});

Deno.test("header_to_metadata", async (t) => {
  await t.step("present and missing headers, remove, the filter's namespace, stats", () => {
    const { streamInfo, request, stat } = run({
      stat_prefix: "h2m",
      request_rules: [
        { ...lbRule(), remove: true },
        { header: "x-version", on_header_present: { key: "version" } },
        {
          header: "x-missing",
          on_header_missing: { metadata_namespace: "envoy.lb", key: "stage", value: "prod" },
        },
        { header: "x-empty", on_header_present: { key: "empty" } },
      ],
    }, [["x-canary", "yes"], ["x-version", "1"], ["x-version", "2"], ["x-empty", ""]]);
    assert.deepEqual(streamInfo.dynamicMetadata, {
      "envoy.lb": { canary: "yes", stage: "prod" },
      [HEADER_TO_METADATA_NAME]: { version: "1,2" },
    });
    assert.equal(request.headers.has("x-canary"), false);
    assert.equal(request.headers.has("x-version"), true);
    assert.equal(stat("request_rules_processed"), 4);
    assert.equal(stat("request_metadata_added"), 3);
    assert.equal(stat("request_header_not_found"), 1);
  });

  await t.step("value types: a fixed value, NUMBER, BASE64 STRING, PROTOBUF_VALUE", () => {
    const boolTrue = btoa("\x20\x01"); // google.protobuf.Value { bool_value: true }
    // Value { list_value { values [{ string_value: "a" }, { number_value: 1 }] } }
    const list = btoa("\x32\x10\x0a\x03\x1a\x01a\x0a\x09\x11\x00\x00\x00\x00\x00\x00\xf0\x3f");
    const { streamInfo, stat } = run({
      stat_prefix: "h2m",
      request_rules: [
        lbRule({ value: "fixed" }),
        { header: "x-n", on_header_present: { key: "n", type: "NUMBER" } },
        { header: "x-bad-n", on_header_present: { key: "bad", type: "NUMBER" } },
        { header: "x-b64", on_header_present: { key: "s", encode: "BASE64" } },
        { header: "x-bad-b64", on_header_present: { key: "bad64", encode: "BASE64" } },
        { header: "x-pb", on_header_present: { key: "flag", type: "PROTOBUF_VALUE", encode: "BASE64" } },
        { header: "x-list", on_header_present: { key: "list", type: "PROTOBUF_VALUE", encode: "BASE64" } },
        { header: "x-long", on_header_present: { key: "long" } },
      ],
    }, [
      ["x-canary", "1"],
      ["x-n", " 2.5e1 "],
      ["x-bad-n", "12abc"],
      ["x-b64", btoa("hello")],
      ["x-bad-b64", "!!!"],
      ["x-pb", boolTrue],
      ["x-list", list],
      ["x-long", "x".repeat(8192)],
    ]);
    assert.deepEqual(streamInfo.dynamicMetadata?.[HEADER_TO_METADATA_NAME], {
      n: 25,
      s: "hello",
      flag: true,
      list: ["a", 1],
    });
    assert.equal(streamInfo.dynamicMetadata?.["envoy.lb"].canary, "fixed");
    assert.equal(stat("base64_decode_failed"), 1);
    assert.equal(stat("header_value_too_long"), 1);
  });

  await t.step("regex_value_rewrite, cookies, response rules", () => {
    const { streamInfo, stat } = run(
      {
        stat_prefix: "h2m",
        request_rules: [
          {
            header: ":path",
            on_header_present: {
              key: "tenant",
              regex_value_rewrite: { pattern: { regex: "^/t/([^/]+)/.*$" }, substitution: "\\1" },
            },
          },
          { cookie: "session", on_header_present: { key: "session" } },
        ],
        response_rules: [
          { header: "x-served-by", on_header_present: { key: "served_by" }, remove: true },
          { header: "x-absent", on_header_missing: { key: "absent", value: "yes" } },
        ],
      },
      [["cookie", 'a=1; session="abc"']],
      [200, [["x-served-by", "canary"]]],
    );
    // the request path is "/": no match, so the value is kept as is
    assert.deepEqual(streamInfo.dynamicMetadata?.[HEADER_TO_METADATA_NAME], {
      tenant: "/",
      session: "abc",
      served_by: "canary",
      absent: "yes",
    });
    assert.equal(stat("response_rules_processed"), 2);
    assert.equal(stat("response_header_not_found"), 1);
  });

  await t.step("per-route config replaces the filter's", () => {
    const rt = table(oneHost([{
      match: { prefix: "/" },
      route: { cluster: "c" },
      typed_per_filter_config: {
        [HEADER_TO_METADATA_NAME]: { "@type": TYPE, request_rules: [lbRule({ value: "route" })] },
      },
    }]));
    const f = new HeaderToMetadataFactory(
      headerToMetadataSchema.parse({ request_rules: [lbRule({ value: "filter" })] }),
      testContext(),
      HEADER_TO_METADATA_NAME,
    );
    const s = stream([["x-canary", "1"]], rt.match(req("/")));
    f.createFilter(s.cb).decodeHeaders!(true);
    assert.deepEqual(s.streamInfo.dynamicMetadata, { "envoy.lb": { canary: "route" } });
  });

  await t.step("config checks with Envoy's messages", () => {
    const issues = (c: unknown, schema = headerToMetadataSchema) => {
      const r = schema.safeParse(c);
      assert.ok(!r.success);
      return r.error.issues.map((i) => i.message).join("|");
    };
    const rule = (r: unknown) => ({ request_rules: [r] });
    assert.match(
      issues(rule({ header: "a", cookie: "b", on_header_present: { key: "k" } })),
      /both header and cookie/,
    );
    assert.match(issues(rule({ on_header_present: { key: "k" } })), /One of Cookie or Header/);
    assert.match(issues(rule({ header: "a" })), /neither `on_header_present` nor `on_header_missing`/);
    assert.match(
      issues(rule({
        header: "a",
        on_header_present: {
          key: "k",
          value: "v",
          regex_value_rewrite: {
            pattern: { regex: "x" },
            substitution: "y",
          },
        },
      })),
      /both value and regex_value_rewrite/,
    );
    assert.match(
      issues(rule({ cookie: "a", remove: true, on_header_present: { key: "k" } })),
      /remove for cookie/,
    );
    assert.match(
      issues(rule({ header: "a", on_header_missing: { key: "k" } })),
      /on_header_missing rule with an empty/,
    );
    assert.match(issues({}, headerToMetadataPerRouteSchema), /Per filter configs must at least specify/);
    assert.match(
      issues(rule({ header: "a", on_header_present: { key: "k", type: "BOOL" } })),
      /Invalid option|expected/,
    );
  });
});
