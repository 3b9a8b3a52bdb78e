/** xxHash64 (the hash Envoy's hash policies use), over the UTF-8 bytes of a string, with BigInt arithmetic. */

const M = (1n << 64n) - 1n;
const P1 = 11400714785074694791n;
const P2 = 14029467366897019727n;
const P3 = 1609587929392839161n;
const P4 = 9650029242287828579n;
const P5 = 2870177450012600261n;

const encoder = new TextEncoder();
let buf = new Uint8Array(256);
let view = new DataView(buf.buffer);

function rotl(x: bigint, r: bigint): bigint {
  return ((x << r) | (x >> (64n - r))) & M;
}

function round(acc: bigint, input: bigint): bigint {
  acc = (acc + input * P2) & M;
  return (rotl(acc, 31n) * P1) & M;
}

function mergeRound(acc: bigint, val: bigint): bigint {
  acc ^= round(0n, val);
  return (acc * P1 + P4) & M;
}

/** xxHash64 of `bytes[0, len)` with `seed`. */
export function xxhash64Bytes(bytes: Uint8Array, len: number, seed = 0n): bigint {
  const dv = bytes === buf ? view : new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + P1 + P2) & M;
    let v2 = (seed + P2) & M;
    let v3 = seed & M;
    let v4 = (seed - P1) & M;
    const limit = len - 32;
    while (p <= limit) {
      v1 = round(v1, dv.getBigUint64(p, true));
      v2 = round(v2, dv.getBigUint64(p + 8, true));
      v3 = round(v3, dv.getBigUint64(p + 16, true));
      v4 = round(v4, dv.getBigUint64(p + 24, true));
      p += 32;
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = (seed + P5) & M;
  }
  h = (h + BigInt(len)) & M;
  while (p + 8 <= len) {
    h ^= round(0n, dv.getBigUint64(p, true));
    h = (rotl(h, 27n) * P1 + P4) & M;
    p += 8;
  }
  if (p + 4 <= len) {
    h ^= (BigInt(dv.getUint32(p, true)) * P1) & M;
    h = (rotl(h, 23n) * P2 + P3) & M;
    p += 4;
  }
  while (p < len) {
    h ^= (BigInt(bytes[p]) * P5) & M;
    h = (rotl(h, 11n) * P1) & M;
    p++;
  }
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}

/** xxHash64 of the UTF-8 encoding of `s` with `seed` (0 by default, as Envoy's HashUtil). */
export function xxhash64(s: string, seed = 0n): bigint {
  if (s.length * 3 > buf.length) {
    buf = new Uint8Array(s.length * 3);
    view = new DataView(buf.buffer);
  }
  const { written } = encoder.encodeInto(s, buf);
  return xxhash64Bytes(buf, written, seed);
}
