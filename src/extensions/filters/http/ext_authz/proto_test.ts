// deno-lint-ignore-file no-explicit-any -- decoded protobuf JSON is navigated freely in assertions
/**
 * The hand-written Check codec against Envoy's own descriptors (envoy/service/auth/v3 in the generated xDS
 * descriptors): what nuncio encodes decodes as the CheckRequest Envoy would send, and CheckResponses encoded
 * from Envoy's schema decode to the decisions Envoy's GrpcClientImpl makes.
 */
import assert from "node:assert/strict";
import { decodeMessage, encodeMessage } from "../../../../xds/codec/mod.ts";
import { messageType } from "../../../../xds/codec/root.ts";
import { type CheckInput, CheckStatus, MutationAction } from "./check.ts";
import { decodeCheckResponse, encodeCheckRequest } from "./proto.ts";

function input(extra: Partial<CheckInput> = {}): CheckInput {
  return {
    source: { address: "10.0.0.7", port: 51234, service: "front", principal: "", certificate: "" },
    destination: { address: "127.0.0.1", port: 8000, service: "", principal: "spiffe://me", certificate: "" },
    startTimeMs: 1_700_000_000_123,
    id: "42",
    method: "POST",
    path: "/api/x?y=1",
    host: "example.com",
    scheme: "http",
    size: 5,
    protocol: "HTTP/1.1",
    headerNames: [":authority", ":path", ":method", ":scheme", "x-user", "x-envoy-auth-partial-body"],
    headerValues: ["example.com", "/api/x?y=1", "POST", "http", "ann,bob", "false"],
    rawHeaders: false,
    body: new TextEncoder().encode("hello"),
    packAsBytes: false,
    contextExtensions: { team: "payments", "é": "ü" },
    sni: "example.com",
    metadataContext: {
      "envoy.filters.http.jwt_authn": { sub: "ann", n: 1.5, ok: true, l: [1, "a", null], o: { x: {} } },
    },
    ...extra,
  };
}

const checkRequest = () => messageType("envoy.service.auth.v3.CheckRequest");
const checkResponse = () => messageType("envoy.service.auth.v3.CheckResponse");

Deno.test("CheckRequest decodes with Envoy's descriptors", () => {
  const json = decodeMessage(checkRequest(), encodeCheckRequest(input())) as Record<string, any>;
  const a = json.attributes;
  assert.deepEqual(a.source, {
    address: { socket_address: { address: "10.0.0.7", port_value: 51234 } },
    service: "front",
  });
  assert.deepEqual(a.destination, {
    address: { socket_address: { address: "127.0.0.1", port_value: 8000 } },
    principal: "spiffe://me",
  });
  assert.equal(a.request.time, "2023-11-14T22:13:20.123Z");
  assert.deepEqual(a.request.http, {
    id: "42",
    method: "POST",
    headers: {
      ":authority": "example.com",
      ":path": "/api/x?y=1",
      ":method": "POST",
      ":scheme": "http",
      "x-user": "ann,bob",
      "x-envoy-auth-partial-body": "false",
    },
    path: "/api/x?y=1",
    host: "example.com",
    scheme: "http",
    size: "5",
    protocol: "HTTP/1.1",
    body: "hello",
  });
  assert.deepEqual(a.context_extensions, { team: "payments", "é": "ü" });
  assert.deepEqual(a.tls_session, { sni: "example.com" });
  assert.deepEqual(a.metadata_context, {
    filter_metadata: {
      "envoy.filters.http.jwt_authn": { sub: "ann", n: 1.5, ok: true, l: [1, "a", null], o: { x: {} } },
    },
  });
  const none = decodeMessage(checkRequest(), encodeCheckRequest(input({ metadataContext: null })));
  assert.deepEqual((none as Record<string, any>).attributes.metadata_context, {});
});

Deno.test("CheckRequest: raw headers, raw body, no body, no extensions", () => {
  const bytes = new Uint8Array([0, 0xff, 0x41]);
  const raw = decodeMessage(
    checkRequest(),
    encodeCheckRequest(input({
      rawHeaders: true,
      headerNames: ["x-a", "x-a", "x-b"],
      headerValues: ["1", "2", "caf\u00e9"],
      body: bytes,
      packAsBytes: true,
      contextExtensions: null,
      sni: null,
    })),
  ) as Record<string, any>;
  const http = raw.attributes.request.http;
  assert.equal(http.headers, undefined);
  assert.deepEqual(http.header_map.headers, [
    { key: "x-a", raw_value: btoa("1") },
    { key: "x-a", raw_value: btoa("2") },
    { key: "x-b", raw_value: btoa("caf\u00e9") },
  ]);
  assert.equal(http.raw_body, btoa(String.fromCharCode(0, 0xff, 0x41)));
  assert.equal(raw.attributes.context_extensions, undefined);
  assert.equal(raw.attributes.tls_session, undefined);
  // not pack_as_bytes: invalid UTF-8 becomes "!" (Envoy's sanitizeUtf8String)
  const text = decodeMessage(checkRequest(), encodeCheckRequest(input({ body: bytes }))) as Record<
    string,
    any
  >;
  assert.equal(text.attributes.request.http.body, "\u0000!A");
  const none = decodeMessage(checkRequest(), encodeCheckRequest(input({ body: null, size: 0 }))) as Record<
    string,
    any
  >;
  assert.equal(none.attributes.request.http.body, undefined);
  assert.equal(none.attributes.request.http.size, undefined);
});

Deno.test("CheckResponse: OK with mutations", () => {
  const bytes = encodeMessage(checkResponse(), {
    status: { code: 0 },
    ok_response: {
      headers: [
        { header: { key: "X-User", value: "ann" } },
        { header: { key: "x-set", value: "1" }, append: false },
        { header: { key: "x-app", value: "2" }, append: true },
        { header: { key: "x-abs", value: "3" }, append_action: "ADD_IF_ABSENT" },
        { header: { key: "x-ow", value: "4" }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" },
        { header: { key: "x-oe", value: "5" }, append_action: "OVERWRITE_IF_EXISTS" },
      ],
      headers_to_remove: ["Authorization"],
      response_headers_to_add: [
        { header: { key: "x-r1", value: "a" }, append: true },
        { header: { key: "x-r2", value: "b" }, append: false },
      ],
      query_parameters_to_set: [{ key: "k", value: "v" }],
      query_parameters_to_remove: ["drop"],
    },
  });
  const r = decodeCheckResponse(bytes);
  assert.equal(r.status, CheckStatus.Ok);
  assert.deepEqual(r.requestHeaders, [
    { key: "x-user", value: "ann", action: MutationAction.Add },
    { key: "x-set", value: "1", action: MutationAction.Set },
    { key: "x-app", value: "2", action: MutationAction.Append },
    { key: "x-abs", value: "3", action: MutationAction.AddIfAbsent },
    { key: "x-ow", value: "4", action: MutationAction.Set },
    { key: "x-oe", value: "5", action: MutationAction.OverwriteIfExists },
  ]);
  assert.deepEqual(r.headersToRemove, ["authorization"]);
  assert.deepEqual(r.responseHeaders, [
    { key: "x-r1", value: "a", action: MutationAction.Add },
    { key: "x-r2", value: "b", action: MutationAction.Set },
  ]);
  assert.deepEqual(r.queryToSet, [["k", "v"]]);
  assert.deepEqual(r.queryToRemove, ["drop"]);
  assert.equal(r.sawInvalidAppendAction, false);
});

Deno.test("CheckResponse: dynamic_metadata, and ok_response's overriding it", () => {
  const meta = { user: "ann", level: 3, admin: false, groups: ["a", "b"], extra: { k: null } };
  const top = decodeCheckResponse(
    encodeMessage(checkResponse(), { status: { code: 0 }, dynamic_metadata: meta }),
  );
  assert.deepEqual(top.dynamicMetadata, meta);
  const inner = decodeCheckResponse(encodeMessage(checkResponse(), {
    status: { code: 0 },
    dynamic_metadata: meta,
    ok_response: { dynamic_metadata: { from: "ok_response" } },
  }));
  assert.deepEqual(inner.dynamicMetadata, { from: "ok_response" });
  const denied = decodeCheckResponse(
    encodeMessage(checkResponse(), { status: { code: 7 }, dynamic_metadata: meta }),
  );
  assert.deepEqual(denied.dynamicMetadata, meta);
  assert.equal(
    decodeCheckResponse(encodeMessage(checkResponse(), { status: { code: 0 } })).dynamicMetadata,
    null,
  );
});

Deno.test("CheckResponse: denied, denied without details, no status", () => {
  const denied = decodeCheckResponse(encodeMessage(checkResponse(), {
    status: { code: 7 },
    denied_response: {
      status: { code: 401 },
      headers: [{ header: { key: "www-authenticate", value: "Bearer" } }],
      body: "who are you",
    },
  }));
  assert.equal(denied.status, CheckStatus.Denied);
  assert.equal(denied.statusCode, 401);
  assert.equal(denied.body, "who are you");
  assert.deepEqual(denied.responseHeaders, [{
    key: "www-authenticate",
    value: "Bearer",
    action: MutationAction.Add,
  }]);
  const bare = decodeCheckResponse(encodeMessage(checkResponse(), { status: { code: 16 } }));
  assert.equal(bare.status, CheckStatus.Denied);
  assert.equal(bare.statusCode, 403);
  // no status at all is code 0: OK
  assert.equal(decodeCheckResponse(new Uint8Array(0)).status, CheckStatus.Ok);
  assert.throws(() => decodeCheckResponse(new Uint8Array([0x0a, 0x05, 0x08])));
});
