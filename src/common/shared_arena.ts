/**
 * Memory shared by the main thread and every data-plane worker: one SharedArrayBuffer, created by the main
 * thread at start and handed to each worker, in which any thread finds or creates a zeroed slot by key.
 *
 * State that must be one across workers lives here and is read and written with `Atomics`: circuit breaker
 * counts, host health and outlier state, token buckets. Every worker builds the same config in the same
 * way, so each asks for the same keys; whichever thread asks first allocates the slot, the others find it.
 * Keys are names ("cb/<cluster>/default"), so a slot outlives a config snapshot that keeps the name.
 *
 * Layout (Int32 indices): [0] bump pointer (next free Int32 index, always 8-byte aligned), [1] table
 * capacity; then `capacity` entries of 5 Int32s (state, hash hi, hash lo, offset, length); then the heap.
 * Keys are compared by a 53-bit hash (a collision between two live keys is astronomically unlikely and
 * is reported as an error when the lengths differ).
 */

const ENTRY = 5;
const HEADER = 2;
const EMPTY = 0;
const WRITING = 1;
const READY = 2;

/** 53-bit string hash (cyrb53), split into two non-zero-friendly halves. */
function hashKey(key: string): [number, number] {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < key.length; i++) {
    const ch = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [(h2 & 0x1fffff) | 0x200000, h1 | 0];
}

/** Options of `SharedArena.create`. */
export interface SharedArenaOptions {
  /** Total size in bytes (default 8 MiB; pages are only resident once touched). */
  bytes?: number;
  /** Number of keys the table can hold (default 16384). */
  capacity?: number;
}

/** A keyed allocator over one SharedArrayBuffer; cheap to attach in every thread. */
export class SharedArena {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #capacity: number;
  readonly #heapStart: number;
  readonly #cache = new Map<string, Int32Array>();

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer);
    this.#capacity = Atomics.load(this.#i32, 1);
    this.#heapStart = alignEven(HEADER + this.#capacity * ENTRY);
  }

  /** Creates a new arena (main thread, once per process). */
  static create(opts: SharedArenaOptions = {}): SharedArena {
    const capacity = opts.capacity ?? 16384;
    const bytes = opts.bytes ?? 8 * 1024 * 1024;
    const buffer = new SharedArrayBuffer(bytes);
    const i32 = new Int32Array(buffer);
    i32[1] = capacity;
    i32[0] = alignEven(HEADER + capacity * ENTRY);
    if (i32[0] * 4 >= bytes) throw new RangeError("SharedArena too small for its table");
    return new SharedArena(buffer);
  }

  /** Attaches to an arena created by another thread (workers, from the start message). */
  static attach(buffer: SharedArrayBuffer): SharedArena {
    return new SharedArena(buffer);
  }

  /**
   * Returns the slot for `key`: `int32Count` Int32s, zeroed when first allocated, 8-byte aligned, the same
   * memory in every thread. Called at config build time (not per request); throws when the arena is full or
   * the key was allocated before with another length.
   */
  slot(key: string, int32Count: number): Int32Array {
    const cached = this.#cache.get(key);
    if (cached) {
      if (cached.length !== int32Count) throw new Error(`Shared slot "${key}" has another length`);
      return cached;
    }
    const view = new Int32Array(this.buffer, this.#find(key, int32Count) * 4, int32Count);
    this.#cache.set(key, view);
    return view;
  }

  /** Like `slot`, viewed as BigInt64s (for Atomics on 64-bit values such as timestamps). */
  slot64(key: string, count: number): BigInt64Array {
    const i32 = this.slot(key, count * 2);
    return new BigInt64Array(this.buffer, i32.byteOffset, count);
  }

  /** Like `slot`, viewed as Float64s (plain loads and stores only: Atomics does not cover floats). */
  slotF64(key: string, count: number): Float64Array {
    const i32 = this.slot(key, count * 2);
    return new Float64Array(this.buffer, i32.byteOffset, count);
  }

  /** Bytes of heap in use (for /memory and tests). */
  usedBytes(): number {
    return (Atomics.load(this.#i32, 0) - this.#heapStart) * 4;
  }

  #find(key: string, length: number): number {
    const [hi, lo] = hashKey(key);
    const a = this.#i32;
    const cap = this.#capacity;
    let i = (hi ^ lo) >>> 0;
    for (let probes = 0; probes < cap; probes++, i++) {
      const e = HEADER + (i % cap) * ENTRY;
      let state = Atomics.load(a, e);
      if (state === EMPTY) {
        if (Atomics.compareExchange(a, e, EMPTY, WRITING) === EMPTY) {
          const offset = Atomics.add(a, 0, alignEven(length));
          if ((offset + length) * 4 > this.buffer.byteLength) {
            Atomics.sub(a, 0, alignEven(length));
            Atomics.store(a, e, EMPTY);
            throw new RangeError(`SharedArena full allocating "${key}"`);
          }
          a[e + 1] = hi;
          a[e + 2] = lo;
          a[e + 3] = offset;
          a[e + 4] = length;
          Atomics.store(a, e, READY);
          return offset;
        }
        state = Atomics.load(a, e);
      }
      // another thread is writing this entry: it finishes within a few instructions
      while (state === WRITING) state = Atomics.load(a, e);
      if (a[e + 1] === hi && a[e + 2] === lo) {
        if (a[e + 4] !== length) throw new Error(`Shared slot "${key}" has another length`);
        return a[e + 3];
      }
    }
    throw new RangeError(`SharedArena table full allocating "${key}"`);
  }
}

function alignEven(n: number): number {
  return (n + 1) & ~1;
}
