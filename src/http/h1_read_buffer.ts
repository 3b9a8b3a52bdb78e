/**
 * The read side of one downstream HTTP/1.1 connection: a byte buffer with the unparsed bytes at
 * [start, end), filled by plain reads. A connection with nothing buffered holds no buffer: its read (a new
 * connection's first, a keep-alive connection's next request, the read-ahead behind a response) goes into a
 * shared-slab slot of IDLE_READ bytes, and the bytes move into a 1 KiB working buffer from a pool when they
 * come (network/read_memory.ts). The working buffer grows to the header limit only while a large head arrives
 * and to 64 KiB only while a body streams, and goes back to the pool when the connection waits again. While a
 * response is in flight the connection reads ahead, so pipelined bytes are kept and a client disconnect is
 * noticed at once.
 */
import { connRead } from "../network/raw_io.ts";
import type { DownstreamConnection } from "../network/filter.ts";
import { BufferPool, IDLE_SLOT_BYTES, idleReadSlots } from "../network/read_memory.ts";
import type { HcmStats } from "./hcm_config.ts";
import type { HeadScanState } from "./h1/types.ts";

/** Working buffer of a connection reading a head (nginx's client_header_buffer_size); grows on demand. */
export const INITIAL_BUF = 1024;
/** Buffer size while a request body or an upgraded stream's bytes are copied. */
export const BODY_BUF = 64 * 1024;
/**
 * Bytes a read with nothing buffered asks for. A head that does not fit (browsers send 0.5-2 KiB) takes one
 * more read, which finds its bytes already there; an API client's or a load generator's head fits.
 */
export const IDLE_READ = IDLE_SLOT_BYTES;

/** The `buf` of a connection that holds no working buffer. */
const NO_BUFFER = new Uint8Array(0);
/** Working buffers of connections between their first bytes and their next wait (1 MiB kept at most). */
const workingBuffers = new BufferPool(INITIAL_BUF, 1024);

/**
 * Buffered reads of one downstream connection. The connection's parsers and body pumps read `buf` between
 * `start` and `end` and advance `start`; they may also replace `buf` (growing it for a body) and reset
 * `start`/`end` to 0 when the buffer is empty.
 */
export class H1ReadBuffer implements HeadScanState {
  /** The buffer; unconsumed bytes are [start, end). Empty (no buffer held) until bytes come. */
  buf: Uint8Array = NO_BUFFER;
  /** First unconsumed byte. */
  start = 0;
  /** End of the bytes read. */
  end = 0;
  /** True once the downstream reached EOF (or a read failed). */
  eof = false;
  /** The pending read-ahead, if any (see startReadAhead). */
  readAhead: Promise<number | null> | null = null;
  /** Where the pending read-ahead writes: the buffer and offset it was started with. */
  #aheadBuf: Uint8Array | null = null;
  #aheadAt = 0;
  /** The idle slot the pending read-ahead reads into, if it does. */
  #slot: Uint8Array | null = null;
  /** True while the connection is parked: `owner.wake` runs once the read-ahead completed (see park). */
  #parked = false;
  /**
   * The read-ahead's settlement (fulfilled or rejected): a bound method, which costs less per connection than
   * an arrow function with its context.
   */
  readonly #onReadAhead: (r: unknown) => number | null = this.#settled.bind(this);
  /** Incremental head-scan state of the request parser (where the last incomplete scan stopped). */
  scanned = 0;

  /**
   * `owner.clientGone` runs when a read-ahead hits EOF, i.e. the client left while its response was in flight;
   * `owner.wake` when the read of a parked connection completed.
   */
  constructor(
    readonly down: DownstreamConnection,
    readonly stats: HcmStats,
    readonly owner: { clientGone(): void; wake(): void },
  ) {}

  /** Reads more bytes into the buffer; false on EOF/error. Compacts or grows the buffer as needed. */
  async fill(maxGrow: number): Promise<boolean> {
    if (this.readAhead) {
      await this.readAhead;
      return !this.eof;
    }
    if (this.eof) return false;
    let buf = this.buf;
    if (buf.length === 0) this.buf = buf = workingBuffers.take();
    else if (this.end === buf.length) {
      if (this.start > 0) {
        buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        if (buf.length >= maxGrow) return true; // the parser reports the limit
        const bigger = new Uint8Array(Math.min(maxGrow, buf.length * 4));
        bigger.set(buf.subarray(0, this.end));
        this.buf = buf = bigger;
      }
    }
    let n: number | null;
    try {
      n = (await connRead(this.down.conn, buf.subarray(this.end))) || null;
    } catch {
      n = null;
    }
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.#gotBytes(buf, this.end, n);
    this.end += n;
    return true;
  }

  #gotBytes(buf: Uint8Array, at: number, n: number): void {
    this.stats.downstream_cx_rx_bytes_total.inc(n);
    if (this.down.observed) this.down.observeRead(buf.subarray(at, at + n), false);
  }

  /**
   * Before a read that may wait long: an empty buffer restarts at 0, and one grown for a body or a big head
   * is replaced by a working buffer of INITIAL_BUF bytes.
   */
  prepareIdleRead(): void {
    if (this.start !== this.end) return;
    this.start = this.end = 0;
    if (this.buf.length > INITIAL_BUF) this.buf = workingBuffers.take();
  }

  /**
   * Waits for the next bytes without a suspended async function: starts the read (as a read-ahead) unless one
   * is pending already, and calls `owner.wake` once bytes or EOF arrived. False when no read could start (EOF
   * seen, or the buffer is full).
   */
  park(): boolean {
    if (this.readAhead === null) this.startReadAhead();
    if (this.readAhead === null) return false;
    this.#parked = true;
    return true;
  }

  /**
   * Starts reading ahead (pipelined bytes or EOF) while a response is in flight, or the read of a parked
   * connection. With nothing buffered the read goes into an idle slot and the working buffer goes back to
   * its pool (nothing refers to consumed bytes: body chunks are copied by whoever keeps them).
   */
  startReadAhead(): void {
    if (this.readAhead || this.eof) return;
    let into: Uint8Array;
    if (this.start === this.end) {
      const buf = this.buf;
      this.buf = NO_BUFFER;
      this.start = this.end = 0;
      if (buf.length !== 0) workingBuffers.give(buf);
      into = this.#slot = idleReadSlots.take();
      this.#aheadAt = 0;
    } else {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      }
      if (this.end === this.buf.length) return;
      into = this.buf.subarray(this.end);
      this.#aheadAt = this.end;
    }
    this.#aheadBuf = this.#slot ?? this.buf;
    this.readAhead = connRead(this.down.conn, into).then(this.#onReadAhead, this.#onReadAhead);
  }

  /** A byte count (0 or null at EOF), or the error a failed read rejects with. */
  #settled(r: unknown): number | null {
    return this.#readAheadDone(typeof r === "number" ? r : null);
  }

  #readAheadDone(n: number | null): number | null {
    this.readAhead = null;
    const src = this.#aheadBuf!;
    const at = this.#aheadAt;
    const slot = this.#slot;
    this.#aheadBuf = this.#slot = null;
    if (!n) {
      this.eof = true;
      this.owner.clientGone();
    } else {
      // The bytes landed in a slot, or a body pump reset [start, end) or swapped the buffer while the read
      // was pending: move them to the end of what is buffered now.
      if (src !== this.buf || at !== this.end) this.#place(src, at, n);
      this.#gotBytes(this.buf, this.end, n);
      this.end += n;
    }
    if (slot !== null) idleReadSlots.give(slot);
    if (this.#parked) {
      this.#parked = false;
      this.owner.wake();
    }
    return n || null;
  }

  /** Copies `n` bytes read into `src` at `at` to [end, end + n) of the current buffer (compacting or growing). */
  #place(src: Uint8Array, at: number, n: number): void {
    if (this.end + n > this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      }
      const need = this.end + n;
      if (need > this.buf.length) {
        const bigger = need <= INITIAL_BUF ? workingBuffers.take() : new Uint8Array(need);
        bigger.set(this.buf.subarray(0, this.end));
        this.buf = bigger;
      }
    }
    if (src === this.buf) this.buf.copyWithin(this.end, at, at + n);
    else this.buf.set(src.subarray(at, at + n), this.end);
  }
}
