/**
 * The key hash Envoy's redis proxy gives the cluster's load balancer: `MurmurHash::murmurHash2` (libstdc++'s
 * 64-bit `_Hash_bytes`, seed 0xc70f6907) of the key, or of its hash tag (the text between the first `{` and the
 * next `}` when non-empty, as Redis Cluster) with `enable_hashtagging`. Computed on 32-bit halves over the
 * request's bytes (no string, no BigInt until the one the LbContext needs).
 */

let rHi = 0;
let rLo = 0;

/** (ah:al) * (bh:bl) mod 2^64 into rHi:rLo. */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  rLo = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const carry = (mid >>> 16) + (p01 >>> 16) + (p10 >>> 16) + a1 * b1;
  rHi = (carry + Math.imul(al, bh) + Math.imul(ah, bl)) >>> 0;
}

const M_HI = 0xc6a4a793;
const M_LO = 0x5bd1e995;
const SEED = 0xc70f6907;

const u32 = new Uint32Array(2);
const u64 = new BigUint64Array(u32.buffer);

/** The high and low 32 bits of the last `murmurHash2` result. */
export const hashResult = { hi: 0, lo: 0 };

/** Envoy's MurmurHash::murmurHash2 of bytes [s, e) of `buf` (result in `hashResult`). */
export function murmurHash2(buf: Uint8Array, s: number, e: number): void {
  const len = e - s;
  mul(0, len, M_HI, M_LO);
  let hHi = rHi;
  let hLo = (rLo ^ SEED) >>> 0;
  const alignedEnd = s + (len & ~7);
  let p = s;
  for (; p < alignedEnd; p += 8) {
    const dLo = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
    const dHi = (buf[p + 4] | (buf[p + 5] << 8) | (buf[p + 6] << 16) | (buf[p + 7] << 24)) >>> 0;
    mul(dHi, dLo, M_HI, M_LO);
    // shiftMix then * mul
    mul(rHi, (rLo ^ (rHi >>> 15)) >>> 0, M_HI, M_LO);
    hHi = (hHi ^ rHi) >>> 0;
    hLo = (hLo ^ rLo) >>> 0;
    mul(hHi, hLo, M_HI, M_LO);
    hHi = rHi;
    hLo = rLo;
  }
  const rest = len & 7;
  if (rest !== 0) {
    let dLo = 0;
    let dHi = 0;
    for (let i = rest - 1; i >= 0; i--) {
      // (d << 8) + byte on 64 bits
      dHi = ((dHi << 8) | (dLo >>> 24)) >>> 0;
      dLo = ((dLo << 8) | buf[p + i]) >>> 0;
    }
    hHi = (hHi ^ dHi) >>> 0;
    hLo = (hLo ^ dLo) >>> 0;
    mul(hHi, hLo, M_HI, M_LO);
    hHi = rHi;
    hLo = rLo;
  }
  mul(hHi, (hLo ^ (hHi >>> 15)) >>> 0, M_HI, M_LO);
  hashResult.hi = rHi;
  hashResult.lo = (rLo ^ (rHi >>> 15)) >>> 0;
}

/** The last result as the unsigned 64-bit BigInt an LbContext carries. */
export function hashBigInt(): bigint {
  u32[0] = hashResult.lo;
  u32[1] = hashResult.hi;
  return u64[0];
}

/** Start and end of the hash tag in the last `hashTag` call. */
export const tagRange = { s: 0, e: 0 };

/**
 * Envoy's hashtag(): the bytes between the first `{` and the next `}` of [s, e) when that is non-empty, else the
 * whole key (result in `tagRange`).
 */
export function hashTag(buf: Uint8Array, s: number, e: number): void {
  tagRange.s = s;
  tagRange.e = e;
  let open = -1;
  for (let i = s; i < e; i++) {
    if (buf[i] === 123) {
      open = i;
      break;
    }
  }
  if (open < 0) return;
  for (let i = open + 1; i < e; i++) {
    if (buf[i] === 125) {
      if (i === open + 1) return;
      tagRange.s = open + 1;
      tagRange.e = i;
      return;
    }
  }
}

const enc = new TextEncoder();

/** The hash of a key string as the load balancer sees it (tests and the bench compute placements with it). */
export function keyHash(key: string, hashtagging: boolean): bigint {
  const b = enc.encode(key);
  let s = 0;
  let e = b.length;
  if (hashtagging) {
    hashTag(b, 0, b.length);
    s = tagRange.s;
    e = tagRange.e;
  }
  murmurHash2(b, s, e);
  return hashBigInt();
}
