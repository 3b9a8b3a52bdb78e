/**
 * xxHash64 (the XXH64 algorithm) computed on 32-bit halves, so hashing allocates no BigInt until the
 * final result. Used by RING_HASH / MAGLEV and by route hash policies.
 */

// Primes as [hi, lo] 32-bit halves.
const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;

// Result registers of the 64-bit helpers (avoids allocating pairs).
let rh = 0;
let rl = 0;

/** (ah:al) + (bh:bl) mod 2^64 into rh:rl. */
function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  rl = lo >>> 0;
  rh = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** (ah:al) * (bh:bl) mod 2^64 into rh:rl, with 16-bit limbs. */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a48 = ah >>> 16, a32 = ah & 0xffff, a16 = al >>> 16, a00 = al & 0xffff;
  const b48 = bh >>> 16, b32 = bh & 0xffff, b16 = bl >>> 16, b00 = bl & 0xffff;
  let c00 = a00 * b00;
  let c16 = c00 >>> 16;
  c00 &= 0xffff;
  c16 += a16 * b00;
  let c32 = c16 >>> 16;
  c16 &= 0xffff;
  c16 += a00 * b16;
  c32 += c16 >>> 16;
  c16 &= 0xffff;
  c32 += a32 * b00;
  let c48 = c32 >>> 16;
  c32 &= 0xffff;
  c32 += a16 * b16;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c32 += a00 * b32;
  c48 += c32 >>> 16;
  c32 &= 0xffff;
  c48 += a48 * b00 + a32 * b16 + a16 * b32 + a00 * b48;
  c48 &= 0xffff;
  rh = ((c48 << 16) | c32) >>> 0;
  rl = ((c16 << 16) | c00) >>> 0;
}

/** Rotates (h:l) left by r (1..63) into rh:rl. */
function rotl(h: number, l: number, r: number): void {
  if (r >= 32) {
    const t = h;
    h = l;
    l = t;
    r -= 32;
  }
  if (r === 0) {
    rh = h;
    rl = l;
    return;
  }
  rh = ((h << r) | (l >>> (32 - r))) >>> 0;
  rl = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** XXH64 round: rotl(acc + input * P2, 31) * P1, into rh:rl. */
function round(acch: number, accl: number, inh: number, inl: number): void {
  mul(inh, inl, P2H, P2L);
  add(acch, accl, rh, rl);
  rotl(rh, rl, 31);
  mul(rh, rl, P1H, P1L);
}

/** XXH64 merge round: (acc ^ round(0, v)) * P1 + P4, into rh:rl. */
function mergeRound(acch: number, accl: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  mul((acch ^ rh) >>> 0, (accl ^ rl) >>> 0, P1H, P1L);
  add(rh, rl, P4H, P4L);
}

/** Little-endian uint32 at `i`. */
function u32(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

/** Registers of the last hash (high and low 32 bits), set by `xxhash64Parts`. */
export const xxhashResult: { hi: number; lo: number } = { hi: 0, lo: 0 };

/**
 * Hashes `b` with a 64-bit seed given as halves; leaves the result in `xxhashResult` (no allocation).
 * Runs per request for hash policies; returns nothing.
 */
export function xxhash64Parts(b: Uint8Array, seedHi = 0, seedLo = 0): void {
  const len = b.length;
  let i = 0;
  let hh: number, hl: number;
  if (len >= 32) {
    add(seedHi, seedLo, P1H, P1L);
    add(rh, rl, P2H, P2L);
    let v1h = rh, v1l = rl;
    add(seedHi, seedLo, P2H, P2L);
    let v2h = rh, v2l = rl;
    let v3h = seedHi, v3l = seedLo;
    // seed - P1 = seed + (2^64 - P1)
    add(seedHi, seedLo, (~P1H) >>> 0, (~P1L) >>> 0);
    add(rh, rl, 0, 1);
    let v4h = rh, v4l = rl;
    const limit = len - 32;
    while (i <= limit) {
      round(v1h, v1l, u32(b, i + 4), u32(b, i));
      v1h = rh, v1l = rl;
      round(v2h, v2l, u32(b, i + 12), u32(b, i + 8));
      v2h = rh, v2l = rl;
      round(v3h, v3l, u32(b, i + 20), u32(b, i + 16));
      v3h = rh, v3l = rl;
      round(v4h, v4l, u32(b, i + 28), u32(b, i + 24));
      v4h = rh, v4l = rl;
      i += 32;
    }
    rotl(v1h, v1l, 1);
    hh = rh, hl = rl;
    rotl(v2h, v2l, 7);
    add(hh, hl, rh, rl);
    hh = rh, hl = rl;
    rotl(v3h, v3l, 12);
    add(hh, hl, rh, rl);
    hh = rh, hl = rl;
    rotl(v4h, v4l, 18);
    add(hh, hl, rh, rl);
    hh = rh, hl = rl;
    mergeRound(hh, hl, v1h, v1l);
    mergeRound(rh, rl, v2h, v2l);
    mergeRound(rh, rl, v3h, v3l);
    mergeRound(rh, rl, v4h, v4l);
    hh = rh, hl = rl;
  } else {
    add(seedHi, seedLo, P5H, P5L);
    hh = rh, hl = rl;
  }
  // h += len (len < 2^53: split into halves)
  add(hh, hl, Math.floor(len / 4294967296) >>> 0, len >>> 0);
  hh = rh, hl = rl;
  while (i + 8 <= len) {
    round(0, 0, u32(b, i + 4), u32(b, i));
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 27);
    mul(rh, rl, P1H, P1L);
    add(rh, rl, P4H, P4L);
    hh = rh, hl = rl;
    i += 8;
  }
  if (i + 4 <= len) {
    mul(0, u32(b, i), P1H, P1L);
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 23);
    mul(rh, rl, P2H, P2L);
    add(rh, rl, P3H, P3L);
    hh = rh, hl = rl;
    i += 4;
  }
  while (i < len) {
    mul(0, b[i], P5H, P5L);
    rotl((hh ^ rh) >>> 0, (hl ^ rl) >>> 0, 11);
    mul(rh, rl, P1H, P1L);
    hh = rh, hl = rl;
    i++;
  }
  // avalanche
  hl = (hl ^ (hh >>> 1)) >>> 0; // h ^= h >> 33
  mul(hh, hl, P2H, P2L);
  hh = rh, hl = rl;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0; // h ^= h >> 29
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul(hh, hl, P3H, P3L);
  hh = rh, hl = rl;
  hl = (hl ^ hh) >>> 0; // h ^= h >> 32
  xxhashResult.hi = hh;
  xxhashResult.lo = hl;
}

/** XXH64 of `bytes` with `seed` (default 0), as an unsigned 64-bit bigint. */
export function xxhash64(bytes: Uint8Array, seed: bigint = 0n): bigint {
  if (seed === 0n) xxhash64Parts(bytes, 0, 0);
  else {
    const s = BigInt.asUintN(64, seed);
    xxhash64Parts(bytes, Number(s >> 32n), Number(s & 0xffffffffn));
  }
  return (BigInt(xxhashResult.hi) << 32n) | BigInt(xxhashResult.lo);
}

const encoder = new TextEncoder();

/** XXH64 of the UTF-8 bytes of `s` (config-time helper). */
export function xxhash64String(s: string, seed: bigint = 0n): bigint {
  return xxhash64(encoder.encode(s), seed);
}

/** xxhash64 of a string's UTF-8 bytes as 16 hex digits: the content versions of the registry and control plane. */
export function xxhash64Hex(s: string): string {
  return xxhash64String(s).toString(16).padStart(16, "0");
}
