/**
 * The byte I/O under a connection: a read loop over one reused buffer handing complete bytes to the
 * connection, and a double-buffered writer (frames queue in `out` while the other buffer is being written).
 */
import { FRAME_HEADER } from "./constants.ts";
import { OutBuf } from "./frame.ts";

/** The byte transport a connection runs on; `Deno.Conn` satisfies it. */
export interface H2Transport {
  /** Reads into `p`; resolves with the byte count or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some prefix of `p`; resolves with the count written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes the transport. */
  close(): void;
}

/** What the wire drives (the connection). */
export interface WireSink {
  /** Consumes bytes [s, e) of `b` (valid only during the call); returns how far it got. */
  onBytes(b: Uint8Array, s: number, e: number): number;
  /** Everything queued was written: room for more stream data. */
  onDrained(): void;
  /** The transport ended or failed (or the wire finished closing). */
  onEnd(): void;
  /** True once the connection is going away and reads should stop. */
  readonly stopReading: boolean;
}

/** Reads and writes one transport for one connection. */
export class Wire {
  /** Frames being queued (swapped with the in-flight buffer on each write). */
  out = new OutBuf();
  #spare = new OutBuf();
  #inflightFrames = 0;
  #inflightControl = 0;
  #inflightBytes = 0;
  #writing = false;
  #flushScheduled = false;
  #closeAfterFlush = false;
  #closed = false;
  readonly #t: H2Transport;
  readonly #sink: WireSink;
  readonly #flushCb = () => {
    this.#flushScheduled = false;
    void this.#flushLoop();
  };

  /** Wraps `transport` for `sink`. */
  constructor(transport: H2Transport, sink: WireSink) {
    this.#t = transport;
    this.#sink = sink;
  }

  /** Bytes queued or being written. */
  get bufferedBytes(): number {
    return this.out.len + this.#inflightBytes;
  }

  /** Frames queued or being written. */
  get queuedFrames(): number {
    return this.out.frames + this.#inflightFrames;
  }

  /** Control frames queued or being written. */
  get queuedControlFrames(): number {
    return this.out.controlFrames + this.#inflightControl;
  }

  /** Schedules a write of everything queued (once per microtask turn). */
  flush(): void {
    if (this.#flushScheduled || this.#writing || this.#closed) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#flushCb);
  }

  /** Ends the connection once everything queued is written. */
  closeAfterFlush(): void {
    this.#closeAfterFlush = true;
    if (this.out.len === 0 && !this.#writing) this.#sink.onEnd();
    else this.flush();
  }

  /** Closes the transport now. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#t.close();
    } catch { /* already closed */ }
  }

  /** Starts the read loop; `initial` holds bytes already read (sniffed) from the transport. */
  async read(maxFrameSize: number, initial?: Uint8Array): Promise<void> {
    const room = FRAME_HEADER + maxFrameSize;
    let buf = new Uint8Array(Math.max(65536, 2 * room, initial ? initial.length * 2 : 0));
    let s = 0, e = 0;
    if (initial) buf.set(initial), e = initial.length;
    try {
      for (;;) {
        if (e > s) s = this.#sink.onBytes(buf, s, e);
        if (this.#sink.stopReading || this.#closed) break;
        if (s === e) s = e = 0;
        else if (buf.length - e < room) {
          buf.copyWithin(0, s, e);
          e -= s;
          s = 0;
          if (buf.length - e < room) {
            const nb = new Uint8Array(buf.length * 2);
            nb.set(buf.subarray(0, e));
            buf = nb;
          }
        }
        const n = await this.#t.read(buf.subarray(e));
        if (n === null) break;
        e += n;
      }
    } catch { /* reset by peer or closed locally */ }
    if (!this.#closeAfterFlush) this.#sink.onEnd();
  }

  async #flushLoop(): Promise<void> {
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    try {
      while (this.out.len > 0 && !this.#closed) {
        const cur = this.out;
        this.out = this.#spare;
        this.#spare = cur;
        this.#inflightFrames = cur.frames;
        this.#inflightControl = cur.controlFrames;
        this.#inflightBytes = cur.len;
        let off = 0;
        while (off < cur.len) off += await this.#t.write(cur.buf.subarray(off, cur.len));
        cur.clear();
        this.#inflightFrames = this.#inflightControl = this.#inflightBytes = 0;
        if (!this.#closeAfterFlush) this.#sink.onDrained();
      }
    } catch {
      this.#writing = false;
      this.#sink.onEnd();
      return;
    }
    this.#writing = false;
    if (this.#closeAfterFlush) this.#sink.onEnd();
  }
}
