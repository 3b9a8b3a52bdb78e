import assert from "node:assert/strict";
import { hashTag, keyHash, tagRange } from "./hash.ts";

Deno.test("murmurHash2 matches Envoy's MurmurHash::murmurHash2 (libstdc++ std::hash<std::string>)", () => {
  // Values printed by g++ 12: std::hash<std::string>{}(key), the same function and seed (0xc70f6907).
  const vectors: [string, bigint][] = [
    ["", 6142509188972423790n],
    ["a", 4993892634952068459n],
    ["foo", 9631199822919835226n],
    ["hello world", 5577293430985752569n],
    ["0123456789abcdef0", 4013166917474506472n],
    ["key:000000000001", 18230306884697310578n],
    ["{user1000}.following", 11464415821435168329n],
  ];
  for (const [k, v] of vectors) assert.equal(keyHash(k, false), v, k);
});

Deno.test("hash tags: the text between the first { and the next }, when not empty", () => {
  const enc = new TextEncoder();
  const tag = (k: string) => {
    const b = enc.encode(k);
    hashTag(b, 0, b.length);
    return new TextDecoder().decode(b.subarray(tagRange.s, tagRange.e));
  };
  assert.equal(tag("{user1000}.following"), "user1000");
  assert.equal(tag("x{a}{b}"), "a");
  assert.equal(tag("{}.x"), "{}.x");
  assert.equal(tag("no tag"), "no tag");
  assert.equal(tag("open{only"), "open{only");
  assert.equal(tag("a}b{c}"), "c");
  assert.equal(keyHash("{user1000}.following", true), keyHash("user1000", false));
  assert.equal(keyHash("{user1000}.followers", true), keyHash("{user1000}.following", true));
  assert.notEqual(keyHash("{user1000}.followers", false), keyHash("{user1000}.following", false));
});
