import assert from "node:assert/strict";
import { mergeSlashes, normalizePath, type PathOptions, preparePath, removeDotSegments } from "./path.ts";

const ALL: PathOptions = { normalize: true, mergeSlashes: true, escapedSlashes: "KEEP_UNCHANGED" };
const NONE: PathOptions = { normalize: false, mergeSlashes: false, escapedSlashes: "KEEP_UNCHANGED" };

function okPath(raw: string, opts: PathOptions): string {
  const r = preparePath(raw, opts);
  assert.ok(r.ok, `expected ok for ${raw}`);
  return r.path;
}

Deno.test("preparePath: common path is returned unchanged", () => {
  const raw = "/foo/bar?x=1&y=/../a//b";
  const r = preparePath(raw, ALL);
  assert.ok(r.ok);
  assert.equal(r.path, raw);
  assert.equal(r.changed, false);
  assert.equal(okPath("/.well-known/x", ALL), "/.well-known/x");
  assert.equal(okPath("/a..b/c.", ALL), "/a..b/c.");
  assert.equal(okPath("*", ALL), "*");
  assert.equal(okPath("", ALL), "");
});

Deno.test("preparePath: fragments are rejected", () => {
  for (const raw of ["/a#b", "/a?x=1#frag", "/#"]) {
    const r = preparePath(raw, NONE);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.status, 400);
      assert.equal(r.details, "http1.invalid_url");
    }
  }
});

Deno.test("preparePath: normalize_path", async (t) => {
  const cases: [string, string][] = [
    ["/a/b/../c", "/a/c"],
    ["/a/./b/.", "/a/b/"],
    ["/a/..", "/"],
    ["/../../a", "/a"],
    ["/..", "/"],
    ["/a/b/..?q=/../x", "/a/?q=/../x"],
    ["/%61%62%2D%7e", "/ab-~"],
    ["/a/%2e%2e/b", "/b"],
    ["/a%2fb", "/a%2Fb"],
    ["/a%3a%5cb", "/a%3A%5Cb"],
    ["/a%zz%4", "/a%zz%4"],
    ["/a\\b\\..\\c", "/a/c"],
    ["/a//b/../c", "/a//c"],
  ];
  for (const [raw, want] of cases) {
    await t.step(`${raw} -> ${want}`, () => {
      const r = preparePath(raw, { ...NONE, normalize: true });
      assert.ok(r.ok);
      assert.equal(r.path, want);
      assert.equal(r.changed, want !== raw);
    });
  }
  await t.step("without normalize, dots and escapes pass", () => {
    assert.equal(okPath("/a/../b%2e", NONE), "/a/../b%2e");
  });
});

Deno.test("preparePath: merge_slashes", () => {
  assert.equal(okPath("//a///b//?x=//", { ...NONE, mergeSlashes: true }), "/a/b/?x=//");
  assert.equal(okPath("/a//b/../c", ALL), "/a/c");
  assert.equal(okPath("//a", NONE), "//a");
});

Deno.test("preparePath: escaped slashes", async (t) => {
  await t.step("KEEP_UNCHANGED and default", () => {
    assert.equal(okPath("/a%2Fb", NONE), "/a%2Fb");
    assert.equal(okPath("/a%2fb", { ...NONE, escapedSlashes: "IMPLEMENTATION_SPECIFIC_DEFAULT" }), "/a%2fb");
  });
  await t.step("REJECT_REQUEST", () => {
    for (const raw of ["/a%2Fb", "/a%2fb", "/a%5Cb", "/a%5cb"]) {
      const r = preparePath(raw, { ...NONE, escapedSlashes: "REJECT_REQUEST" });
      assert.equal(r.ok, false, raw);
      if (!r.ok) assert.equal(r.status, 400);
    }
    assert.equal(okPath("/a%20b?x=%2F", { ...NONE, escapedSlashes: "REJECT_REQUEST" }), "/a%20b?x=%2F");
  });
  await t.step("UNESCAPE_AND_FORWARD", () => {
    const opts: PathOptions = { ...NONE, escapedSlashes: "UNESCAPE_AND_FORWARD" };
    assert.equal(okPath("/a%2Fb%5cc?q=%2F", opts), "/a/b\\c?q=%2F");
    assert.equal(okPath("/a%2F..%2Fb", { ...opts, normalize: true }), "/b");
  });
  await t.step("UNESCAPE_AND_REDIRECT", () => {
    const r = preparePath("/a%2F%2Fb?x=1", { ...ALL, escapedSlashes: "UNESCAPE_AND_REDIRECT" });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.status, 307);
      assert.equal(r.location, "/a/b?x=1");
    }
    const plain = preparePath("/a%20b", { ...ALL, escapedSlashes: "UNESCAPE_AND_REDIRECT" });
    assert.ok(plain.ok);
    assert.equal(plain.path, "/a%20b");
  });
});

Deno.test("path helpers", () => {
  assert.equal(removeDotSegments("/a/b/c/./../../g"), "/a/g");
  assert.equal(removeDotSegments("/mid/content=5/../6"), "/mid/6");
  assert.equal(normalizePath("/%7Euser/%41"), "/~user/A");
  assert.equal(mergeSlashes("/a//b///c"), "/a/b/c");
  assert.equal(mergeSlashes("/a/b"), "/a/b");
});
