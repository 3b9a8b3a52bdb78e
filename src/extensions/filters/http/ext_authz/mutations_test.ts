/** Applying decisions: header actions on the request and responses, query rewriting, validity checks. */
import assert from "node:assert/strict";
import type { HttpRequest } from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import { MutationAction } from "./check.ts";
import {
  applyRequestMutation,
  applyResponseMutations,
  headerNameIsValid,
  headerValueIsValid,
  isRemovableHeader,
  queryParameterIsUrlEncoded,
  rewriteQuery,
} from "./mutations.ts";

function request(): HttpRequest {
  return {
    method: "GET",
    path: "/p",
    authority: "a.example",
    scheme: "http",
    protocol: "HTTP/1.1",
    headers: HeaderMap.from([["host", "a.example"], ["x-a", "1"], ["x-a", "2"], ["x-b", "b"]]),
    contentLength: 0,
  };
}

Deno.test("request mutations by action", () => {
  const r = request();
  applyRequestMutation(r, { key: "x-a", value: "s", action: MutationAction.Set });
  applyRequestMutation(r, { key: "x-b", value: "more", action: MutationAction.Append });
  applyRequestMutation(r, { key: "x-none", value: "z", action: MutationAction.Append });
  applyRequestMutation(r, { key: "x-c", value: "c1", action: MutationAction.Add });
  applyRequestMutation(r, { key: "x-c", value: "c2", action: MutationAction.Add });
  applyRequestMutation(r, { key: "x-b", value: "no", action: MutationAction.AddIfAbsent });
  applyRequestMutation(r, { key: "x-d", value: "d", action: MutationAction.AddIfAbsent });
  applyRequestMutation(r, { key: "x-e", value: "no", action: MutationAction.OverwriteIfExists });
  applyRequestMutation(r, { key: "x-d", value: "d2", action: MutationAction.OverwriteIfExists });
  applyRequestMutation(r, { key: ":path", value: "/new", action: MutationAction.Set });
  applyRequestMutation(r, { key: "host", value: "b.example", action: MutationAction.Set });
  assert.deepEqual([...r.headers], [
    ["host", "b.example"],
    ["x-a", "s"],
    ["x-b", "b,more"],
    ["x-c", "c1"],
    ["x-c", "c2"],
    ["x-d", "d2"],
  ]);
  assert.equal(r.path, "/new");
  assert.equal(r.authority, "b.example");
});

Deno.test("response mutations: local replies remove every set header first", () => {
  const h = HeaderMap.from([["content-type", "text/plain"], ["x-keep", "k"]]);
  applyResponseMutations(h, [
    { key: "content-type", value: "application/json", action: MutationAction.Set },
    { key: "set-cookie", value: "a=1", action: MutationAction.Set },
    { key: "set-cookie", value: "b=2", action: MutationAction.Set },
    { key: "x-keep", value: "no", action: MutationAction.AddIfAbsent },
  ], true);
  assert.deepEqual([...h], [
    ["x-keep", "k"],
    ["content-type", "application/json"],
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
  ]);
  const ok = HeaderMap.from([["x-r", "1"]]);
  applyResponseMutations(ok, [
    { key: "x-r", value: "2", action: MutationAction.Add },
    { key: "x-s", value: "3", action: MutationAction.Set },
    { key: "x-s", value: "4", action: MutationAction.Set },
  ], false);
  assert.deepEqual([...ok], [["x-r", "1"], ["x-r", "2"], ["x-s", "4"]]);
});

Deno.test("query parameters: sorted keys as Envoy's QueryParamsMulti", () => {
  assert.equal(rewriteQuery("/a?z=1&b=2&b=3&drop=x", [["m", "v"]], ["drop"]), "/a?b=2&b=3&m=v&z=1");
  assert.equal(rewriteQuery("/a?b=2&b=3", [["b", "9"]], []), "/a?b=9");
  assert.equal(rewriteQuery("/a?only=1", [], ["only"]), "/a");
  assert.equal(rewriteQuery("/a", [["k", ""]], []), "/a?k=");
  assert.equal(rewriteQuery("/a?flag&x=1", [], ["x"]), "/a?flag=");
});

Deno.test("validity checks", () => {
  assert.ok(headerNameIsValid("x-ok"));
  assert.ok(headerNameIsValid(":path"));
  assert.ok(!headerNameIsValid("bad name"));
  assert.ok(!headerNameIsValid(""));
  assert.ok(headerValueIsValid("a\tb"));
  assert.ok(!headerValueIsValid("a\r\nb"));
  assert.ok(queryParameterIsUrlEncoded("a%20b"));
  assert.ok(!queryParameterIsUrlEncoded("a b"));
  assert.ok(!queryParameterIsUrlEncoded("a&b"));
  assert.ok(!queryParameterIsUrlEncoded("%zz"));
  assert.ok(isRemovableHeader("x-a"));
  assert.ok(!isRemovableHeader("host"));
  assert.ok(!isRemovableHeader(":path"));
});
