/**
 * One downstream connection of the redis proxy: reads pipelined requests into a growing buffer, hands each to
 * the splitter and writes replies back in request order (a reply that arrives before an earlier one waits in
 * its slot; the head of the queue is written straight from the upstream read buffer). Output is written one
 * write at a time from two swapped buffers; QUIT and drain close once nothing is owed.
 */
import { connRead, connWrite, readRoom } from "../../../../network/raw_io.ts";
import type { DownstreamConnection, TerminalFilter } from "../../../../network/filter.ts";
import type { RedisProxyFactory } from "./filter.ts";
import { Fifo } from "./fifo.ts";
import { Slot, type SlotOwner } from "./requests.ts";
import { INCOMPLETE, OutBuf, PROTOCOL_ERROR, RequestArgs } from "./resp.ts";
import { dispatch } from "./splitter.ts";
import type { Transaction } from "./transaction.ts";

/** A connection starts with small buffers (idle connections are cheap) and grows them for big requests. */
const READ_SIZE = 4 * 1024;
/** Past this, an emptied read buffer goes back to READ_SIZE. */
const KEEP_READ_SIZE = 64 * 1024;

/** One downstream connection. */
export class RedisSession implements TerminalFilter, SlotOwner {
  readonly args = new RequestArgs();
  /** Authenticated (or no auth configured). */
  allowed: boolean;
  /** The client negotiated RESP3 (HELLO 3): its requests use RESP3 upstream connections, replies pass as is. */
  resp3 = false;
  /** MULTI/EXEC state, made on the first transaction command. */
  tx: Transaction | null = null;
  /** QUIT received: close once every reply is out. */
  quit = false;
  #draining = false;
  #down: DownstreamConnection | undefined;
  #conn: Deno.Conn | undefined;
  #closed = false;
  readonly #queue = new Fifo<Slot>();
  #out = new OutBuf(1024);
  #spare = new OutBuf(1024);
  #writing: Uint8Array | null = null;
  #writeOff = 0;
  #dirty = false;
  #writesDone: (() => void) | null = null;
  #quitResolve: (() => void) | null = null;
  /** Bytes read but not yet a whole request (downstream_cx_rx_bytes_buffered). */
  #rxBuffered = 0;

  constructor(readonly f: RedisProxyFactory) {
    this.allowed = f.username === "" && f.passwords.length === 0;
  }

  /** True once the downstream connection closed. */
  get closed(): boolean {
    return this.#closed;
  }

  drain(): void {
    this.#draining = true;
    if (this.#queue.size === 0 && this.#conn !== undefined) this.#drainClose();
  }

  #drainClose(): void {
    this.f.stats.downstream_cx_drain_close.inc();
    this.quit = true;
    this.#maybeQuit();
  }

  async run(down: DownstreamConnection): Promise<void> {
    const f = this.f;
    const st = f.stats;
    this.#down = down;
    this.#conn = down.conn;
    st.downstream_cx_total.inc();
    st.downstream_cx_active.inc();
    let buf = new Uint8Array(READ_SIZE);
    let start = 0;
    let end = 0;
    const args = this.args;
    try {
      if (this.#draining) return;
      while (!this.#closed) {
        if (end === buf.length) {
          buf = readRoom(buf, start, end);
          end -= start;
          start = 0;
        }
        const n = await connRead(down.conn, end === 0 ? buf : buf.subarray(end));
        if (!n) break;
        st.downstream_cx_rx_bytes_total.inc(n);
        f.clock.now = performance.now();
        if (down.observed) down.observeRead(buf.subarray(end, end + n), false);
        end += n;
        let pos = start;
        while (pos < end && !this.quit) {
          const e = args.parse(buf, pos, end);
          if (e === INCOMPLETE) break;
          if (e === PROTOCOL_ERROR) {
            st.downstream_cx_protocol_error.inc();
            this.#out.error("downstream protocol error");
            f.flushClients();
            await this.#flushAndWait();
            return;
          }
          st.downstream_rq_total.inc();
          dispatch(this, buf);
          pos = e;
        }
        if (pos === end) {
          start = end = 0;
          if (buf.length > KEEP_READ_SIZE) buf = new Uint8Array(READ_SIZE);
        } else start = pos;
        if (end - start !== this.#rxBuffered) {
          st.downstream_cx_rx_bytes_buffered.inc(end - start - this.#rxBuffered);
          this.#rxBuffered = end - start;
        }
        f.flushClients();
        this.flush();
        if (this.quit) break;
        // Backpressure (Envoy's per-connection buffer limit): a client that pipelines faster than it reads its
        // replies stops being read until the replies already produced are written.
        if (this.#out.len >= down.bufferLimitBytes && this.#writing !== null) await this.#flushAndWait();
      }
      if (this.quit) {
        await new Promise<void>((resolve) => {
          this.#quitResolve = resolve;
          this.#maybeQuit();
        });
      }
    } catch {
      // reset by peer
    } finally {
      this.#closed = true;
      this.tx?.close();
      st.downstream_cx_active.dec();
      st.downstream_rq_active.dec(this.#queue.size);
      st.downstream_cx_rx_bytes_buffered.dec(this.#rxBuffered);
      if (this.#writing !== null) {
        st.downstream_cx_tx_bytes_buffered.dec(this.#writing.length - this.#writeOff);
        this.#writing = null;
      }
      down.close();
    }
  }

  /** Starts a slot for a request whose reply comes later. */
  begin(slot: Slot): void {
    this.f.stats.downstream_rq_active.inc();
    this.#queue.push(slot);
  }

  /** Replies at once with bytes [s, e) of `buf` (local replies: PONG, errors, AUTH). */
  local(buf: Uint8Array, s: number, e: number): void {
    if (this.#queue.size === 0) {
      this.#out.bytes(buf, s, e);
      return;
    }
    const slot = new Slot();
    slot.data = buf.slice(s, e);
    slot.ready = true;
    this.f.stats.downstream_rq_active.inc();
    this.#queue.push(slot);
  }

  deliver(slot: Slot, buf: Uint8Array, s: number, e: number): void {
    if (this.#closed) return;
    const q = this.#queue;
    if (q.peek() !== slot) {
      slot.data = buf.slice(s, e);
      slot.ready = true;
      return;
    }
    q.shift();
    const out = this.#out;
    out.bytes(buf, s, e);
    let n = 1;
    let next = q.peek();
    while (next !== undefined && next.ready) {
      const d = next.data!;
      out.bytes(d, 0, d.length);
      q.shift();
      n++;
      next = q.peek();
    }
    this.f.stats.downstream_rq_active.dec(n);
    if (!this.#dirty) {
      this.#dirty = true;
      this.f.markSessionDirty(this);
    }
    if (q.size === 0) {
      if (this.tx?.shouldClose) this.tx.close();
      if (this.quit || this.#draining) this.#maybeQuit();
    }
  }

  /** Writes what is buffered (one write at a time; more output waits for it). */
  flush(): void {
    this.#dirty = false;
    if (this.#closed || this.#writing !== null || this.#out.len === 0) return;
    const o = this.#out;
    this.#writing = o.buf.subarray(0, o.len);
    this.f.stats.downstream_cx_tx_bytes_buffered.inc(o.len);
    this.#writeOff = 0;
    this.#out = this.#spare;
    this.#spare = o;
    this.#write();
  }

  #write(): void {
    const data = this.#writing!;
    connWrite(this.#conn!, this.#writeOff === 0 ? data : data.subarray(this.#writeOff)).then(
      this.#onWritten,
      this.#onWriteError,
    );
  }

  readonly #onWritten = (n: number): void => {
    const data = this.#writing;
    if (data === null) return;
    this.f.stats.downstream_cx_tx_bytes_total.inc(n);
    this.f.stats.downstream_cx_tx_bytes_buffered.dec(n);
    if (this.#down!.observed) {
      this.#down!.observeWrite(data.subarray(this.#writeOff, this.#writeOff + n), false);
    }
    this.#writeOff += n;
    if (this.#writeOff < data.length) {
      this.#write();
      return;
    }
    this.#writing = null;
    this.#spare.len = 0;
    if (this.#out.len > 0) this.flush();
    else if (this.#writesDone !== null) {
      const done = this.#writesDone;
      this.#writesDone = null;
      done();
    }
  };

  readonly #onWriteError = (): void => {
    if (this.#writing !== null) {
      this.f.stats.downstream_cx_tx_bytes_buffered.dec(this.#writing.length - this.#writeOff);
    }
    this.#writing = null;
    this.#closed = true;
    this.#down?.close();
    const done = this.#writesDone;
    this.#writesDone = null;
    done?.();
  };

  /** Flushes and resolves once every byte is written (or the write failed). */
  #flushAndWait(): Promise<void> {
    this.flush();
    if (this.#writing === null) return Promise.resolve();
    return new Promise((resolve) => {
      this.#writesDone = resolve;
    });
  }

  /** Once no reply is owed and everything is written: ends `run` (QUIT) or closes the connection (drain). */
  #maybeQuit(): void {
    if (this.#queue.size > 0) return;
    const end = this.#quitResolve ?? (() => this.#down?.close());
    this.#quitResolve = null;
    this.flush();
    if (this.#writing === null) end();
    else this.#writesDone = end;
  }
}
