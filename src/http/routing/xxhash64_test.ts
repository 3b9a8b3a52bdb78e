import assert from "node:assert/strict";
import { compileFullMatch, literalPrefix, translateSubstitution } from "./regex.ts";
import { xxhash64String as xxhash64 } from "../../common/xxhash64.ts";

Deno.test("xxhash64 matches the reference implementation", () => {
  // Vectors computed with libxxhash 0.8.1 (XXH64, seed 0 unless given).
  assert.equal(xxhash64(""), 0xef46db3751d8e999n);
  assert.equal(xxhash64("a"), 0xd24ec4f1a98c6e5bn);
  assert.equal(xxhash64("abc"), 0x44bc2cf5ad770999n);
  assert.equal(xxhash64("hello world"), 0x45ab6734b21e6968n);
  assert.equal(xxhash64("x".repeat(31)), 0x60dd0d01083b99f0n);
  assert.equal(xxhash64("x".repeat(32)), 0xe2df261fc2ec30ebn);
  assert.equal(
    xxhash64("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    0x7639d419de614eedn,
  );
  assert.equal(xxhash64("héllo"), 0x3bd06310388ebbe4n);
  assert.equal(xxhash64("abc", 12345n), 0x1700e64f6f23509n);
  assert.equal(xxhash64("y".repeat(1000)), xxhash64("y".repeat(1000)));
});

Deno.test("RE2 translation", () => {
  assert.ok(compileFullMatch("(?i)/ab").test("/AB"));
  assert.ok(compileFullMatch("(?P<id>\\d+)").test("12"));
  assert.ok(!compileFullMatch("a|b").test("ab"));
  assert.ok(compileFullMatch("a|b").test("b"));
  assert.equal(translateSubstitution("\\1x\\0\\\\$", 1), "$01x$&\\$$");
  assert.equal("abc".replace(/(b)/, translateSubstitution("[\\1]0", 1)), "a[b]0c");
  assert.throws(() => translateSubstitution("\\q", 0));
});

Deno.test("regex literal prefixes used for indexing", () => {
  assert.equal(literalPrefix("/api/v1/[0-9]+"), "/api/v1/");
  assert.equal(literalPrefix("/ab?c"), "/a");
  assert.equal(literalPrefix("/ab*"), "/a");
  assert.equal(literalPrefix("/ab{0,2}"), "/a");
  assert.equal(literalPrefix("/ab+"), "/ab");
  assert.equal(literalPrefix("/a|/b"), "");
  assert.equal(literalPrefix("(?i)/a"), "");
  assert.equal(literalPrefix(".*"), "");
  assert.equal(literalPrefix("\\d"), "");
});
