/**
 * The open streams of one HTTP/2 connection by id: an open-addressing hash table (linear probing, deletion by
 * backward shift, so no tombstones) over two flat arrays.
 *
 * Why not a `Map`: a connection opens and closes a stream per request for as long as it lives, and V8 rehashes
 * a `Map` that fills with deleted entries into a new table, leaving the old one pointing at it (for live
 * iterators) and at the streams it held. Once one of those tables had been promoted to the old generation, the
 * chain of dead tables kept every later stream, and everything a stream references (its request, headers,
 * filters), alive through every young-generation collection until the next full one: under h2load (32
 * connections, 10 streams each) a third of the young generation survived each scavenge and nearly all of that
 * was promoted, so scavenges took 5-10 ms each and full collections ran four times a second. This table keeps
 * its arrays until it grows, and clears a slot when its stream closes.
 */
import type { H2Stream } from "./stream.ts";

const EMPTY = 0;

function byId(a: H2Stream, b: H2Stream): number {
  return a.id - b.id;
}

/** Streams by id (ids are positive 31-bit integers). */
export class StreamTable {
  #ids = new Int32Array(16);
  #streams: (H2Stream | null)[] = new Array<H2Stream | null>(16).fill(null);
  #mask = 15;
  /** 32 - log2(capacity): the slot is the top bits of the multiplied id (Fibonacci hashing). */
  #shift = 28;
  #size = 0;

  /** Number of streams. */
  get size(): number {
    return this.#size;
  }

  #slot(id: number): number {
    // the ids of one side go up by 2 (all odd or all even): the top bits of the product spread them
    return Math.imul(id, 0x9e3779b1) >>> this.#shift;
  }

  /** The stream with `id`, undefined when none. */
  get(id: number): H2Stream | undefined {
    const ids = this.#ids;
    const mask = this.#mask;
    for (let i = this.#slot(id);; i = (i + 1) & mask) {
      const k = ids[i];
      if (k === EMPTY) return undefined;
      if (k === id) return this.#streams[i]!;
    }
  }

  /** Adds or replaces the stream with `id`. */
  set(id: number, st: H2Stream): void {
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow();
    const ids = this.#ids;
    const mask = this.#mask;
    for (let i = this.#slot(id);; i = (i + 1) & mask) {
      const k = ids[i];
      if (k === id) {
        this.#streams[i] = st;
        return;
      }
      if (k === EMPTY) {
        ids[i] = id;
        this.#streams[i] = st;
        this.#size++;
        return;
      }
    }
  }

  /** Removes the stream with `id`; false when there was none. */
  delete(id: number): boolean {
    const ids = this.#ids;
    const streams = this.#streams;
    const mask = this.#mask;
    let i = this.#slot(id);
    for (;; i = (i + 1) & mask) {
      const k = ids[i];
      if (k === EMPTY) return false;
      if (k === id) break;
    }
    // backward-shift deletion: move later members of the probe run into the hole
    let hole = i;
    for (let j = (i + 1) & mask;; j = (j + 1) & mask) {
      const k = ids[j];
      if (k === EMPTY) break;
      const home = this.#slot(k);
      // k may fill the hole when its home is not cyclically within (hole, j]
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        ids[hole] = k;
        streams[hole] = streams[j];
        hole = j;
      }
    }
    ids[hole] = EMPTY;
    streams[hole] = null;
    this.#size--;
    return true;
  }

  /**
   * The streams in id order, which is the order they were opened, as a `Map` would give them (a new array:
   * safe to change the table while walking it). Not for hot paths: GOAWAY, SETTINGS, teardown.
   */
  values(): H2Stream[] {
    const out: H2Stream[] = [];
    const streams = this.#streams;
    for (let i = 0; i < streams.length; i++) {
      const st = streams[i];
      if (st !== null) out.push(st);
    }
    return out.sort(byId);
  }

  #grow(): void {
    const oldIds = this.#ids;
    const oldStreams = this.#streams;
    const cap = oldIds.length * 2;
    this.#ids = new Int32Array(cap);
    this.#streams = new Array<H2Stream | null>(cap).fill(null);
    this.#mask = cap - 1;
    this.#shift--;
    this.#size = 0;
    for (let i = 0; i < oldIds.length; i++) {
      if (oldIds[i] !== EMPTY) this.set(oldIds[i], oldStreams[i]!);
    }
  }
}
