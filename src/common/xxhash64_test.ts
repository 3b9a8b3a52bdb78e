import assert from "node:assert/strict";
import { xxhash64, xxhash64String } from "./xxhash64.ts";

const M = (1n << 64n) - 1n;
const P1 = 0x9E3779B185EBCA87n;
const P2 = 0xC2B2AE3D27D4EB4Fn;
const P3 = 0x165667B19E3779F9n;
const P4 = 0x85EBCA77C2B2AE63n;
const P5 = 0x27D4EB2F165667C5n;

/** Straightforward BigInt XXH64 from the published algorithm, used as the oracle. */
function reference(b: Uint8Array, seed: bigint): bigint {
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
  const rd = (acc: bigint, input: bigint) => (rotl((acc + input * P2) & M, 31n) * P1) & M;
  const u64 = (i: number) => {
    let v = 0n;
    for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(b[i + k]);
    return v;
  };
  const u32 = (i: number) =>
    BigInt(b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24) >>> 0) & 0xffffffffn;
  let i = 0;
  let h: bigint;
  if (b.length >= 32) {
    const v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M];
    while (i + 32 <= b.length) {
      for (let k = 0; k < 4; k++) v[k] = rd(v[k], u64(i + 8 * k));
      i += 32;
    }
    h = (rotl(v[0], 1n) + rotl(v[1], 7n) + rotl(v[2], 12n) + rotl(v[3], 18n)) & M;
    for (const x of v) h = (((h ^ rd(0n, x)) * P1) + P4) & M;
  } else h = (seed + P5) & M;
  h = (h + BigInt(b.length)) & M;
  while (i + 8 <= b.length) {
    h = (rotl(h ^ rd(0n, u64(i)), 27n) * P1 + P4) & M;
    i += 8;
  }
  if (i + 4 <= b.length) {
    h = (rotl(h ^ ((u32(i) * P1) & M), 23n) * P2 + P3) & M;
    i += 4;
  }
  while (i < b.length) {
    h = (rotl(h ^ ((BigInt(b[i]) * P5) & M), 11n) * P1) & M;
    i++;
  }
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}

Deno.test("xxhash64", async (t) => {
  await t.step("published vectors", () => {
    assert.equal(xxhash64(new Uint8Array(0)), 0xEF46DB3751D8E999n);
    assert.equal(xxhash64String("a"), 0xD24EC4F1A98C6E5Bn);
    assert.equal(xxhash64String("abc"), 0x44BC2CF5AD770999n);
    assert.equal(xxhash64String("Nobody inspects the spammish repetition"), 0xfbcea83c8a378bf1n);
    assert.equal(xxhash64String("xxhash", 20141025n), 0xb559b98d844e0635n);
  });

  await t.step("matches a BigInt reference for every length 0..200 and several seeds", () => {
    let x = 12345;
    const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
    const buf = new Uint8Array(200);
    for (let i = 0; i < buf.length; i++) buf[i] = rnd();
    for (const seed of [0n, 1n, 0xffffffffn, 0x123456789abcdefn, M]) {
      for (let len = 0; len <= 200; len++) {
        const b = buf.subarray(0, len);
        assert.equal(xxhash64(b, seed), reference(b, seed), `len ${len} seed ${seed}`);
      }
    }
  });

  await t.step("negative seeds wrap to uint64", () => {
    assert.equal(xxhash64String("k", -1n), xxhash64String("k", M));
  });
});
