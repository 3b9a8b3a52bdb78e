/**
 * A bump allocator for short-lived byte buffers of the hot path (encoded heads, chunk frames, a head
 * joined with its first body bytes). Deno pays about a microsecond per new ArrayBuffer (allocator plus
 * external-memory accounting in the GC); here one 128 KiB slab serves many buffers. Regions are never
 * handed out twice: a slab is dropped when full and freed by the GC once its last view is gone, so every
 * result behaves like a fresh `new Uint8Array(n)` (callers may keep it, write it, retry it).
 */

const SLAB_BYTES = 128 * 1024;
/** Requests above this get their own ArrayBuffer (big buffers would pin a slab for little gain). */
export const ARENA_MAX_BYTES = 32 * 1024;

let slab: Uint8Array | null = null;
let used = 0;

/**
 * A new `n`-byte view that nothing else uses (contents unspecified: the caller fills it); from the current
 * slab when `n` is at most ARENA_MAX_BYTES. Do not rely on `.buffer` or `.byteOffset` of the result.
 */
export function allocBytes(n: number): Uint8Array {
  if (n > ARENA_MAX_BYTES) return new Uint8Array(n);
  if (slab === null || used + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    used = 0;
  }
  const start = used;
  used = (start + n + 7) & ~7;
  return slab.subarray(start, start + n);
}

/** `a` followed by `b` in one new buffer (one write instead of two). */
export function joinBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = allocBytes(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
