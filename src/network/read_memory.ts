/**
 * Memory for downstream reads. A Deno read is an op that owns its buffer until bytes come, so a keep-alive
 * connection waiting for its next request holds a buffer for as long as it waits: unlike nginx or Envoy,
 * which wait for readiness and take a buffer only once the socket is readable, nuncio cannot wait without
 * one. Two pools keep that cost small:
 *
 * - `SlotPool`: small fixed-size slices of shared slabs, for the read of a connection with nothing buffered
 *   (a parked keep-alive connection, a new connection before its first byte). A slot has no ArrayBuffer,
 *   backing store or allocation of its own, only a view; pending reads use disjoint slices, so one slab
 *   serves many connections at once.
 * - `BufferPool`: the working buffers of connections that are reading a head; a connection gives its buffer
 *   back when it parks and takes one when bytes arrive, so only connections in a request hold one.
 *
 * Both are free lists: `take` pops, `give` pushes. A buffer or slot given back must not be referenced by its
 * former owner any more (views of consumed bytes included); owners clear their field before giving.
 */

/** Fixed-size slices of shared slabs (see the module comment). Slabs are kept once made. */
export class SlotPool {
  readonly #free: Uint8Array[] = [];
  #slabs = 0;

  constructor(readonly slotBytes: number, readonly slotsPerSlab: number) {}

  /** A free slot (a new slab's first one when none is free). */
  take(): Uint8Array {
    const s = this.#free.pop();
    return s === undefined ? this.#grow() : s;
  }

  /** Returns a slot taken from this pool. */
  give(slot: Uint8Array): void {
    this.#free.push(slot);
  }

  /** Slabs made so far. */
  get slabs(): number {
    return this.#slabs;
  }

  /** Slots free now. */
  get free(): number {
    return this.#free.length;
  }

  #grow(): Uint8Array {
    const size = this.slotBytes;
    const slab = new ArrayBuffer(size * this.slotsPerSlab);
    this.#slabs++;
    for (let i = this.slotsPerSlab - 1; i > 0; i--) this.#free.push(new Uint8Array(slab, i * size, size));
    return new Uint8Array(slab, 0, size);
  }
}

/** A bounded free list of equally sized buffers; buffers of another size are not kept. */
export class BufferPool {
  readonly #free: Uint8Array[] = [];

  constructor(readonly bufferBytes: number, readonly maxFree: number) {}

  /** A free buffer, or a new one. */
  take(): Uint8Array {
    const b = this.#free.pop();
    return b === undefined ? new Uint8Array(this.bufferBytes) : b;
  }

  /** Keeps `buf` for reuse when it is this pool's size and the pool is not full (else the GC frees it). */
  give(buf: Uint8Array): void {
    if (
      buf.byteLength === this.bufferBytes && buf.buffer.byteLength === this.bufferBytes &&
      this.#free.length < this.maxFree
    ) {
      this.#free.push(buf);
    }
  }

  /** Buffers free now. */
  get free(): number {
    return this.#free.length;
  }
}

/** Bytes of a slot of `idleReadSlots`. */
export const IDLE_SLOT_BYTES = 512;
/**
 * The process's slots for reads of connections with nothing buffered or small traffic (HTTP/1.1 downstream
 * connections, tcp_proxy's pumps): one pool, so their pending reads share slabs of 64 KiB.
 */
export const idleReadSlots: SlotPool = new SlotPool(IDLE_SLOT_BYTES, 128);
