/** The HTTP service's request building and response mapping (Envoy's RawHttpClientImpl), without sockets. */
import assert from "node:assert/strict";
import { HeaderMap } from "../../../../http/headers.ts";
import { StringMatch } from "../../../../http/routing/matchers.ts";
import { type CheckInput, CheckStatus, HeaderKeyMatcher, MutationAction } from "./check.ts";
import { authzRequest, compileHeadersToAdd, type HttpClientConfig, toAuthzResponse } from "./http_mapping.ts";

const exact = (...names: string[]) => new HeaderKeyMatcher(names.map((n) => StringMatch.of("exact", n)));

function config(extra: Partial<HttpClientConfig> = {}): HttpClientConfig {
  return {
    cluster: "authz",
    timeoutMs: 200,
    pathPrefix: "/check",
    headersToAdd: compileHeadersToAdd([
      { key: "X-Static", value: "yes" },
      { key: "x-client", value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" },
    ]),
    upstream: exact("x-current-user"),
    upstreamAppend: exact("x-tag"),
    client: null,
    clientOnSuccess: exact("x-trace"),
    dynamicMetadata: exact("x-trace", "x-other"),
    ...extra,
  };
}

const CTX = {
  remoteIp: "10.1.2.3",
  remoteAddress: "10.1.2.3:5555",
  localAddress: "127.0.0.1:80",
  upstreamHost: "",
  protocol: "HTTP/1.1",
  requestId: "",
};

function input(body: Uint8Array | null): CheckInput {
  return {
    source: { address: "10.1.2.3", port: 5555, service: "", principal: "", certificate: "" },
    destination: { address: "127.0.0.1", port: 80, service: "", principal: "", certificate: "" },
    startTimeMs: 0,
    id: "1",
    method: "POST",
    path: "/orders?x=1",
    host: "shop.example",
    scheme: "http",
    size: 0,
    protocol: "HTTP/1.1",
    headerNames: [":authority", ":path", ":method", "authorization", "content-length", "x-static"],
    headerValues: ["shop.example", "/orders?x=1", "POST", "Bearer t", "4", "client"],
    rawHeaders: false,
    body,
    packAsBytes: true,
    contextExtensions: null,
    sni: null,
    metadataContext: null,
  };
}

Deno.test("authorization request: method, prefixed path, Host, headers_to_add, content-length", () => {
  const r = authzRequest(config(), input(new TextEncoder().encode("body")), CTX, () => 0);
  assert.equal(r.method, "POST");
  assert.equal(r.path, "/check/orders?x=1");
  assert.equal(r.authority, "shop.example");
  assert.deepEqual([...r.headers], [
    ["content-length", "4"],
    ["authorization", "Bearer t"],
    ["x-static", "yes"],
    ["x-client", "10.1.2.3"],
  ]);
  assert.equal(new TextDecoder().decode(r.body!), "body");
  const empty = authzRequest(config({ pathPrefix: "" }), input(null), CTX, () => 0);
  assert.equal(empty.headers.get("content-length"), "0");
  assert.equal(empty.path, "/orders?x=1");
  assert.equal(empty.body, null);
});

Deno.test("authorization response: 200 allows with upstream and client headers", () => {
  const h = HeaderMap.from([
    ["x-current-user", "ann"],
    ["x-tag", "t1"],
    ["x-trace", "abc"],
    ["x-envoy-auth-headers-to-remove", "cookie, x-secret"],
    ["content-type", "text/plain"],
  ]);
  const r = toAuthzResponse(config(), 200, h, "ignored");
  assert.equal(r.status, CheckStatus.Ok);
  assert.deepEqual(r.requestHeaders, [
    { key: "x-current-user", value: "ann", action: MutationAction.Set },
    { key: "x-tag", value: "t1", action: MutationAction.Add },
  ]);
  assert.deepEqual(r.responseHeaders, [{ key: "x-trace", value: "abc", action: MutationAction.Add }]);
  assert.deepEqual(r.headersToRemove, ["cookie", "x-secret"]);
  assert.deepEqual(r.dynamicMetadata, { "x-trace": "abc" });
  assert.equal(r.body, "");
});

Deno.test("authorization response: other statuses deny, 5xx is an error", () => {
  const h = HeaderMap.from([
    ["content-type", "application/json"],
    ["content-length", "9"],
    ["connection", "keep-alive"],
    ["www-authenticate", "Basic"],
    ["x-other", "o"],
  ]);
  const all = toAuthzResponse(config(), 401, h, '{"no":1}');
  assert.equal(all.status, CheckStatus.Denied);
  assert.equal(all.statusCode, 401);
  assert.equal(all.body, '{"no":1}');
  assert.deepEqual(all.responseHeaders.map((m) => m.key), ["content-type", "www-authenticate", "x-other"]);
  assert.deepEqual(all.dynamicMetadata, { "x-other": "o" });
  const some = toAuthzResponse(config({ client: exact("x-other", "www-authenticate") }), 403, h, "");
  assert.deepEqual(some.responseHeaders.map((m) => m.key), ["www-authenticate", "x-other"]);
  assert.equal(toAuthzResponse(config(), 503, h, "").status, CheckStatus.Error);
  assert.equal(toAuthzResponse(config(), 302, h, "").status, CheckStatus.Denied);
});
