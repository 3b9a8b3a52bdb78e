/**
 * The read side of one downstream HTTP/1.1 connection: a byte buffer with the unparsed bytes at
 * [start, end), filled by plain reads. It starts at 1 KiB, grows to the header limit only while a large head
 * arrives and to 64 KiB only while a body streams, and shrinks back before a keep-alive wait. While a response
 * is in flight it can read ahead, so pipelined bytes are kept and a client disconnect is noticed at once.
 */
import { connRead } from "../network/raw_io.ts";
import type { DownstreamConnection } from "../network/filter.ts";
import type { HcmStats } from "./hcm_config.ts";

/** Read buffer of a connection waiting for a head (nginx's client_header_buffer_size); grows on demand. */
export const INITIAL_BUF = 1024;
/** Buffer size while a request body or an upgraded stream's bytes are copied. */
export const BODY_BUF = 64 * 1024;

/**
 * Buffered reads of one downstream connection. The connection's parsers and body pumps read `buf` between
 * `start` and `end` and advance `start`; they may also replace `buf` (growing it for a body) and reset
 * `start`/`end` to 0 when the buffer is empty.
 */
export class H1ReadBuffer {
  /** The buffer; unconsumed bytes are [start, end). */
  buf: Uint8Array = new Uint8Array(INITIAL_BUF);
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
  /** Called once the read-ahead of a parked connection completed (see park). */
  #wake: (() => void) | null = null;
  readonly #onReadAhead = (n: number | null) => this.#readAheadDone(n);
  readonly #onReadAheadError = () => this.#readAheadDone(null);

  /** `onClientGone` runs when a read-ahead hits EOF, i.e. the client left while its response was in flight. */
  constructor(
    readonly down: DownstreamConnection,
    readonly stats: HcmStats,
    readonly onClientGone: () => void,
  ) {}

  /** Reads more bytes into the buffer; false on EOF/error. Compacts or grows the buffer as needed. */
  async fill(maxGrow: number): Promise<boolean> {
    if (this.readAhead) {
      await this.readAhead;
      return !this.eof;
    }
    if (this.eof) return false;
    let buf = this.buf;
    if (this.end === buf.length) {
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
   * Before a read that may wait long (keep-alive idle): an empty buffer restarts at 0, and one grown for a
   * body or a big head is given back, so an idle connection holds INITIAL_BUF bytes only.
   */
  prepareIdleRead(): void {
    if (this.start !== this.end) return;
    this.start = this.end = 0;
    if (this.buf.length > INITIAL_BUF) this.buf = new Uint8Array(INITIAL_BUF);
  }

  /**
   * Waits for the next bytes without a suspended async function: starts the read (as a read-ahead) unless one
   * is pending already, and calls `wake` once bytes or EOF arrived. False when no read could start (EOF seen,
   * or the buffer is full).
   */
  park(wake: () => void): boolean {
    if (this.readAhead === null) this.startReadAhead();
    if (this.readAhead === null) return false;
    this.#wake = wake;
    return true;
  }

  /** Starts reading ahead (pipelined bytes or EOF) while a response is in flight. */
  startReadAhead(): void {
    if (this.readAhead || this.eof) return;
    this.prepareIdleRead();
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end === this.buf.length) return;
    this.#aheadBuf = this.buf;
    this.#aheadAt = this.end;
    this.readAhead = connRead(this.down.conn, this.buf.subarray(this.end)).then(
      this.#onReadAhead,
      this.#onReadAheadError,
    );
  }

  #readAheadDone(n: number | null): number | null {
    this.readAhead = null;
    const src = this.#aheadBuf!;
    const at = this.#aheadAt;
    this.#aheadBuf = null;
    if (!n) {
      this.eof = true;
      this.onClientGone();
    } else {
      // A body pump may have reset [start, end) or swapped the buffer while the read was pending: the bytes
      // landed where the read started, so move them to the end of what is buffered now.
      if (src !== this.buf || at !== this.end) this.#place(src, at, n);
      this.#gotBytes(this.buf, this.end, n);
      this.end += n;
    }
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake();
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
      if (this.end + n > this.buf.length) {
        const bigger = new Uint8Array(this.end + n);
        bigger.set(this.buf.subarray(0, this.end));
        this.buf = bigger;
      }
    }
    if (src === this.buf) this.buf.copyWithin(this.end, at, at + n);
    else this.buf.set(src.subarray(at, at + n), this.end);
  }
}
