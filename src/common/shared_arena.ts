/**
 * Memory shared by the main thread and every data-plane worker: one SharedArrayBuffer, created by the main
 * thread at start and handed to each worker, in which any thread finds or creates a zeroed slot by key.
 *
 * State that must be one across workers lives here and is read and written with `Atomics`: circuit breaker
 * counts, host health and outlier state, token buckets. Every worker builds the same config in the same
 * way, so each asks for the same keys; whichever thread asks first allocates the slot, the others find it.
 * Keys are names ("cb/<cluster>/default"), so a slot outlives a config snapshot that keeps the name.
 *
 * Slots are reference counted: each `slot(key)` is one use, `release(key)` gives one back; a thread holds
 * one shared reference while it has uses, and when the last thread lets go the slot's memory and table entry
 * are reused (hosts that discovery removes must not leak the arena over months of churn). Every owner releases
 * what it took when its config is retired: hosts, clusters' breakers and health, token buckets, fault counters.
 *
 * Layout (Int32 indices): [0] bump pointer (next free Int32 index, always 8-byte aligned), [1] table
 * capacity, [2] allocation lock, [3] Int32s on free lists, [4 .. 4+SIZE_CLASSES) free-list heads by size;
 * then `capacity` entries of 5 Int32s (ctl, hash hi, hash lo, offset, length); then the heap. `ctl` is 0
 * (empty), WRITING, TOMB (released; probing continues past it) or the number of threads holding the slot.
 * Lookups of live keys take no lock (a compare-and-swap on ctl); inserting and freeing take the lock, which
 * only config changes do. A thread terminated while holding the lock would leave it held: workers are only
 * terminated at shutdown, after their last arena call. Keys are compared by a 53-bit hash (a collision between two live keys is
 * astronomically unlikely and is reported as an error when the lengths differ).
 */

const ENTRY = 5;
/** Free lists for blocks of 2, 4, ... 2 * SIZE_CLASSES Int32s (bigger blocks are not reused). */
const SIZE_CLASSES = 32;
const LOCK = 2;
const FREE_INTS = 3;
const FREE_HEADS = 4;
const HEADER = FREE_HEADS + SIZE_CLASSES;
const EMPTY = 0;
const WRITING = -1;
const TOMB = -2;

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
  /** How many `slot(key)` calls of this thread are not given back yet (the thread holds one shared ref). */
  readonly #refs = new Map<string, number>();

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
   * memory in every thread. The first call in a thread takes that thread's reference (see `release`). Called
   * at config build time (not per request); throws when the arena is full or the key is live with another
   * length.
   */
  slot(key: string, int32Count: number): Int32Array {
    if (!(int32Count >= 1)) throw new RangeError(`Shared slot "${key}" needs at least one Int32`);
    const cached = this.#cache.get(key);
    if (cached) {
      if (cached.length !== int32Count) throw new Error(`Shared slot "${key}" has another length`);
      this.#refs.set(key, this.#refs.get(key)! + 1);
      return cached;
    }
    const view = new Int32Array(this.buffer, this.#acquire(key, int32Count) * 4, int32Count);
    this.#cache.set(key, view);
    this.#refs.set(key, 1);
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

  /**
   * Gives back one `slot(key)` of this thread (no-op when it holds none). The thread's reference to the
   * shared slot goes when its last `slot(key)` is given back; when no thread holds the slot any more its
   * memory is zeroed and reused by later slots: views of it must not be used after that.
   */
  release(key: string): void {
    const held = this.#refs.get(key);
    if (held === undefined) return;
    if (held > 1) {
      this.#refs.set(key, held - 1);
      return;
    }
    this.#refs.delete(key);
    this.#cache.delete(key);
    const [hi, lo] = hashKey(key);
    const a = this.#i32;
    const cap = this.#capacity;
    let i = (hi ^ lo) >>> 0;
    for (let probes = 0; probes < cap; probes++, i++) {
      const e = entryAt(i % cap);
      let ctl = Atomics.load(a, e);
      if (ctl === EMPTY) return;
      while (ctl === WRITING) ctl = Atomics.load(a, e);
      if (ctl > 0 && a[e + 1] === hi && a[e + 2] === lo) {
        this.#unref(e);
        return;
      }
    }
  }

  /** Bytes of heap in use (allocated and not on a free list). */
  usedBytes(): number {
    return (Atomics.load(this.#i32, 0) - this.#heapStart - Atomics.load(this.#i32, FREE_INTS)) * 4;
  }

  /** Number of live keys (for tests and diagnostics; scans the table). */
  liveKeys(): number {
    let n = 0;
    for (let i = 0; i < this.#capacity; i++) if (Atomics.load(this.#i32, entryAt(i)) > 0) n++;
    return n;
  }

  /** Finds `key` and takes a reference, or inserts it; returns the Int32 offset of its memory. */
  #acquire(key: string, length: number): number {
    const [hi, lo] = hashKey(key);
    const found = this.#lookup(hi, lo, length);
    if (found >= 0) return found;
    this.#lock();
    try {
      // under the lock no entry is inserted or freed: look again, then insert at the first free entry
      const again = this.#lookup(hi, lo, length, true);
      if (again >= 0) return again;
      return this.#insert(key, hi, lo, length);
    } finally {
      Atomics.store(this.#i32, LOCK, 0);
    }
  }

  /**
   * Lock-free: the offset of live `hi/lo` with a reference taken, or -1 when absent. `locked`: the caller
   * holds the lock (then nothing is freed meanwhile, and an undo must not take the lock again).
   */
  #lookup(hi: number, lo: number, length: number, locked = false): number {
    const a = this.#i32;
    const cap = this.#capacity;
    let i = (hi ^ lo) >>> 0;
    for (let probes = 0; probes < cap; probes++, i++) {
      const e = entryAt(i % cap);
      for (;;) {
        let ctl = Atomics.load(a, e);
        if (ctl === EMPTY) return -1;
        while (ctl === WRITING) ctl = Atomics.load(a, e);
        if (ctl <= 0 || a[e + 1] !== hi || a[e + 2] !== lo) break; // tombstone or another key: probe on
        if (Atomics.compareExchange(a, e, ctl, ctl + 1) !== ctl) continue; // raced: read it again
        // the entry may have been freed and reused between the reads and the swap: check what we hold
        if (a[e + 1] !== hi || a[e + 2] !== lo) {
          this.#unref(e, locked);
          break;
        }
        if (a[e + 4] !== length) {
          this.#unref(e, locked);
          throw new Error(`Shared slot has another length (${a[e + 4]}, asked ${length})`);
        }
        return a[e + 3];
      }
    }
    return -1;
  }

  /** Under the lock: a new entry for `hi/lo` holding one reference. */
  #insert(key: string, hi: number, lo: number, length: number): number {
    const a = this.#i32;
    const cap = this.#capacity;
    let i = (hi ^ lo) >>> 0;
    for (let probes = 0; probes < cap; probes++, i++) {
      const e = entryAt(i % cap);
      const ctl = Atomics.load(a, e);
      if (ctl !== EMPTY && ctl !== TOMB) continue;
      const offset = this.#alloc(key, length);
      Atomics.store(a, e, WRITING);
      a[e + 1] = hi;
      a[e + 2] = lo;
      a[e + 3] = offset;
      a[e + 4] = length;
      Atomics.store(a, e, 1);
      return offset;
    }
    throw new RangeError(`SharedArena table full allocating "${key}"`);
  }

  /** Under the lock: zeroed memory for `length` Int32s, from a free list or the bump pointer. */
  #alloc(key: string, length: number): number {
    const a = this.#i32;
    const size = alignEven(length);
    const cls = size / 2 - 1;
    if (cls < SIZE_CLASSES) {
      const head = a[FREE_HEADS + cls];
      if (head !== 0) {
        a[FREE_HEADS + cls] = a[head];
        Atomics.sub(a, FREE_INTS, size);
        a.fill(0, head, head + size);
        return head;
      }
    }
    const offset = a[0];
    if ((offset + size) * 4 > this.buffer.byteLength) {
      throw new RangeError(`SharedArena full allocating "${key}"`);
    }
    Atomics.store(a, 0, offset + size);
    return offset;
  }

  /**
   * Drops one reference of entry `e`; the last one frees its memory under the lock (`locked`: the caller
   * holds it already).
   */
  #unref(e: number, locked = false): void {
    const a = this.#i32;
    for (;;) {
      const ctl = Atomics.load(a, e);
      if (ctl > 1) {
        if (Atomics.compareExchange(a, e, ctl, ctl - 1) === ctl) return;
        continue;
      }
      if (ctl !== 1) return; // not live (cannot happen for a reference holder)
      if (!locked) this.#lock();
      try {
        if (Atomics.compareExchange(a, e, 1, TOMB) !== 1) continue; // someone took a reference meanwhile
        const size = alignEven(a[e + 4]);
        const cls = size / 2 - 1;
        if (cls < SIZE_CLASSES) {
          const offset = a[e + 3];
          a[offset] = a[FREE_HEADS + cls];
          a[FREE_HEADS + cls] = offset;
          Atomics.add(a, FREE_INTS, size);
        }
        return;
      } finally {
        if (!locked) Atomics.store(a, LOCK, 0);
      }
    }
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#i32, LOCK, 0, 1) !== 0) {
      // held by another thread for a few hundred instructions at most (an insert or a free)
    }
  }
}

function entryAt(i: number): number {
  return HEADER + i * ENTRY;
}

function alignEven(n: number): number {
  return (n + 1) & ~1;
}
