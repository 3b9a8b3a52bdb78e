/**
 * Base64 for application/grpc-web-text, byte to byte (no strings): the standard alphabet with padding, as
 * Envoy's Base64::encode writes it, and a strict decoder like Envoy's Base64::decode (length a multiple of 4,
 * padding only at the very end, anything else an error).
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ENC = new Uint8Array(64);
/** Byte -> 6-bit value; 64 for "=", 255 for bytes outside the alphabet. */
const DEC = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) {
  ENC[i] = ALPHABET.charCodeAt(i);
  DEC[ENC[i]] = i;
}
DEC[61] = 64; // "="

/** Length of the base64 text of `n` bytes. */
export function encodedLength(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/** Writes the padded base64 text of `src` into `out` at `off`; returns the offset after it. */
export function encodeInto(src: Uint8Array, out: Uint8Array, off: number): number {
  const n = src.length;
  const whole = n - (n % 3);
  let i = 0;
  for (; i < whole; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    out[off++] = ENC[v >> 18];
    out[off++] = ENC[(v >> 12) & 63];
    out[off++] = ENC[(v >> 6) & 63];
    out[off++] = ENC[v & 63];
  }
  const rest = n - whole;
  if (rest > 0) {
    const v = (src[i] << 16) | (rest === 2 ? src[i + 1] << 8 : 0);
    out[off++] = ENC[v >> 18];
    out[off++] = ENC[(v >> 12) & 63];
    out[off++] = rest === 2 ? ENC[(v >> 6) & 63] : 61;
    out[off++] = 61;
  }
  return off;
}

/** The padded base64 text of `src`. */
export function encode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(encodedLength(src.length));
  encodeInto(src, out, 0);
  return out;
}

/**
 * Decodes `src` (a length that is a multiple of 4); null when it is not valid base64: a byte outside the
 * alphabet, or padding anywhere but in the last one or two positions.
 */
export function decode(src: Uint8Array): Uint8Array | null {
  const n = src.length;
  if (n === 0 || n % 4 !== 0) return null;
  let pad = 0;
  if (src[n - 1] === 61) pad = src[n - 2] === 61 ? 2 : 1;
  const out = new Uint8Array((n / 4) * 3 - pad);
  let o = 0;
  const body = pad > 0 ? n - 4 : n;
  for (let i = 0; i < body; i += 4) {
    const a = DEC[src[i]], b = DEC[src[i + 1]], c = DEC[src[i + 2]], d = DEC[src[i + 3]];
    if ((a | b | c | d) >= 64) return null;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 255;
    out[o++] = v & 255;
  }
  if (pad > 0) {
    const a = DEC[src[n - 4]], b = DEC[src[n - 3]], c = pad === 1 ? DEC[src[n - 2]] : 0;
    if ((a | b | c) >= 64) return null;
    const v = (a << 18) | (b << 12) | (c << 6);
    out[o++] = v >> 16;
    if (pad === 1) out[o++] = (v >> 8) & 255;
  }
  return out;
}
