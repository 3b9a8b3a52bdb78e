/**
 * The stream registry and send path shared by both roles: opening and closing streams (premature reset
 * accounting), and sending heads, DATA (both flow-control windows, write watermark, per-stream queues
 * pumped as room appears) and trailers.
 */
import type { HeaderMap } from "../headers.ts";
import { ErrorCode, MAX_WINDOW } from "./constants.ts";
import { type H2ConnectionOptions, H2Core, type H2Transport } from "./core.ts";
import { beginHeaders, endHeaders, writeData, writeRst, writeWindowUpdate } from "./frame.ts";
import { encodeResponseHead, encodeTrailers } from "./head.ts";
import { H2Stream, type H2StreamHandler, ResetReason, type StreamOwner } from "./stream.ts";
import { StreamTable } from "./stream_table.ts";

/** Streams and sending; the receive half is H2Session (session.ts). */
export abstract class H2Streams extends H2Core implements StreamOwner {
  /** Open streams by id. */
  protected readonly streams = new StreamTable();
  /** Count premature resets (server role). */
  protected countPremature = false;
  /** Streams reset by the peer soon after opening. */
  protected premature = 0;
  #sendable: H2Stream[] = [];
  #spareList: H2Stream[] = [];
  #writable: H2Stream[] = [];
  #closedCount = 0;

  constructor(transport: H2Transport, isClient: boolean, opts: H2ConnectionOptions) {
    super(transport, isClient, opts);
  }

  /** Number of open streams. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Registers a new stream. */
  protected openStream(id: number, handler: H2StreamHandler): H2Stream {
    const st = new H2Stream(this, id, handler, this.peer.initialWindow, this.o.initial_stream_window_size);
    if (this.countPremature) st.openedAt = this.readMono();
    this.streams.set(id, st);
    this.streamsOpened++;
    this.stats.streams_active.inc();
    return st;
  }

  /** Resets `st` for a protocol error on it, telling its handler. */
  protected streamError(st: H2Stream, code: number): void {
    if (st.closed) return;
    writeRst(this.out, st.id, code);
    this.stats.tx_reset.inc();
    this.closeStream(st);
    st.handler.onReset(st, code, ResetReason.LOCAL);
  }

  /** Removes a finished stream. */
  protected closeStream(st: H2Stream): void {
    if (st.closed) return;
    st.closed = true;
    this.streams.delete(st.id);
    this.stats.streams_active.dec();
    if (st.pending > 0) this.stats.pending_send_bytes.dec(st.pending);
    st.pending = 0;
    st.queue = null;
    st.pendingTrailers = null;
    this.#closedCount++;
    if (
      this.countPremature && this.#closedCount >= this.o.premature_reset_total_stream_count &&
      this.premature * 2 >= this.#closedCount && !this.closing
    ) {
      this.stats.too_many_premature_resets.inc();
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, "http2.too_many_premature_resets");
      return;
    }
    this.events.onCapacity?.();
    this.maybeDrained();
  }

  protected maybeDrained(): void {
    if ((this.goawaySent || this.goawayReceived) && this.streams.size === 0 && !this.closing) {
      this.closeAfterFlush();
    }
  }

  protected failStreams(): void {
    for (const st of [...this.streams.values()]) {
      this.closeStream(st);
      st.handler.onReset(st, ErrorCode.INTERNAL_ERROR, ResetReason.CONNECTION);
    }
  }

  protected onPeerSettings(delta: number): void {
    if (delta !== 0) {
      for (const st of this.streams.values()) {
        st.sendWindow += delta;
        if (st.sendWindow > MAX_WINDOW) {
          return this.connectionError(ErrorCode.FLOW_CONTROL_ERROR, "http2.window_overflow");
        }
        if (delta > 0 && st.pending > 0 && !st.inSendable) this.#addSendable(st);
      }
      if (delta > 0) this.pump();
    }
    this.events.onCapacity?.();
  }
  /** Queues `st` for the pump when it has data waiting and window to send it. */
  protected wake(st: H2Stream): void {
    if ((st.pending > 0 || st.queue !== null) && !st.inSendable) {
      this.#addSendable(st);
      this.pump();
    }
  }

  // ---- sending ----

  /** @internal */
  respondFor(st: H2Stream, status: number, headers: HeaderMap, endStream: boolean): void {
    if (st.closed || st.endQueued || st.headersSent) return;
    const at = beginHeaders(this.out);
    encodeResponseHead(this.encoder, this.out, status, headers);
    const final = status >= 200;
    endHeaders(this.out, at, st.id, endStream && final, this.peer.maxFrameSize);
    if (final) st.headersSent = true;
    this.flush();
    if (endStream && final) {
      st.endQueued = true;
      this.#localEnd(st);
    }
  }

  /** @internal */
  sendDataFor(st: H2Stream, data: Uint8Array, endStream: boolean): boolean {
    if (st.closed || st.endQueued) return true;
    if (endStream) st.endQueued = true;
    let held = data.length;
    if (st.queue === null) {
      const off = this.#writeChunk(st, data, 0, endStream);
      if (off === data.length && (!endStream || st.localEnded)) {
        if (st.localEnded) this.#localEnd(st);
        return true;
      }
      held = data.length - off;
      st.queue = [off === 0 ? data : data.subarray(off)];
      st.queueOff = 0;
    } else st.queue.push(data);
    st.pending += held;
    this.stats.pending_send_bytes.inc(held);
    st.wantWritable = true;
    if (st.sendWindow > 0 && !st.inSendable) this.#addSendable(st);
    return false;
  }

  /** @internal */
  sendTrailersFor(st: H2Stream, trailers: HeaderMap): void {
    if (st.closed || st.endQueued) return;
    st.endQueued = true;
    if (st.queue !== null) {
      st.pendingTrailers = trailers;
      return;
    }
    this.#writeTrailers(st, trailers);
  }

  /** @internal */
  resetFor(st: H2Stream, code: number): void {
    if (st.closed) return;
    writeRst(this.out, st.id, code);
    this.stats.tx_reset.inc();
    this.closeStream(st);
    this.flush();
  }

  /** @internal */
  consumeFor(st: H2Stream, n: number): void {
    if (st.closed || st.remoteEnded) return;
    st.recvUnacked += n;
    if (st.recvUnacked >= this.o.initial_stream_window_size >> 1) {
      writeWindowUpdate(this.out, st.id, st.recvUnacked);
      st.recvWindow += st.recvUnacked;
      st.recvUnacked = 0;
      this.flush();
    }
  }

  protected pump(): void {
    if (this.#sendable.length === 0 || this.closing) return;
    const list = this.#sendable;
    this.#sendable = this.#spareList;
    const wm = this.o.write_buffer_high_watermark;
    for (let i = 0; i < list.length; i++) {
      const st = list[i];
      st.inSendable = false;
      if (st.closed) continue;
      if (this.bufferedBytes >= wm || this.connSendWindow <= 0) {
        this.#addSendable(st);
        continue;
      }
      if (this.#drain(st)) {
        if (st.wantWritable) this.#writable.push(st);
      } else if (st.sendWindow > 0) this.#addSendable(st);
    }
    list.length = 0;
    this.#spareList = list;
    this.flush();
    if (this.#writable.length > 0) {
      const w = this.#writable;
      this.#writable = [];
      for (const st of w) {
        st.wantWritable = false;
        if (!st.closed || st.localEnded) st.handler.onWritable?.(st);
      }
    }
  }

  #addSendable(st: H2Stream): void {
    st.inSendable = true;
    this.#sendable.push(st);
  }

  /** Writes queued data; true when the queue (with any end of stream and trailers) is fully written. */
  #drain(st: H2Stream): boolean {
    const q = st.queue;
    if (q === null) return true;
    while (q.length > 0) {
      const chunk = q[0];
      const last = q.length === 1 && st.endQueued && st.pendingTrailers === null;
      const off = this.#writeChunk(st, chunk, st.queueOff, last);
      const sent = off - st.queueOff;
      st.pending -= sent;
      this.stats.pending_send_bytes.dec(sent);
      if (off < chunk.length || (last && !st.localEnded)) {
        st.queueOff = off;
        return false;
      }
      q.shift();
      st.queueOff = 0;
    }
    st.queue = null;
    if (st.pendingTrailers !== null) {
      const t = st.pendingTrailers;
      st.pendingTrailers = null;
      this.#writeTrailers(st, t);
    } else if (st.localEnded) this.#localEnd(st);
    return true;
  }

  /** Writes DATA frames from data[off..] while windows and the watermark allow; returns the new offset. */
  #writeChunk(st: H2Stream, data: Uint8Array, off: number, last: boolean): number {
    const wm = this.o.write_buffer_high_watermark;
    const len = data.length;
    while (off < len) {
      let n = len - off;
      if (n > st.sendWindow) n = st.sendWindow;
      if (n > this.connSendWindow) n = this.connSendWindow;
      if (n > this.peer.maxFrameSize) n = this.peer.maxFrameSize;
      if (n <= 0 || this.bufferedBytes >= wm) break;
      const end = last && off + n === len;
      writeData(this.out, st.id, data, off, off + n, end);
      this.dataFramesSent++;
      st.sendWindow -= n;
      this.connSendWindow -= n;
      off += n;
      if (end) st.localEnded = true;
    }
    if (off === len && last && !st.localEnded) {
      writeData(this.out, st.id, data, len, len, true);
      this.dataFramesSent++;
      st.localEnded = true;
    }
    this.flush();
    return off;
  }

  #writeTrailers(st: H2Stream, trailers: HeaderMap): void {
    const at = beginHeaders(this.out);
    encodeTrailers(this.encoder, this.out, trailers);
    endHeaders(this.out, at, st.id, true, this.peer.maxFrameSize);
    st.localEnded = true;
    this.flush();
    this.#localEnd(st);
  }

  /** Our END_STREAM is written: close, or (server, request still open) stop the peer with RST NO_ERROR. */
  #localEnd(st: H2Stream): void {
    if (st.closed) return;
    if (st.remoteEnded) return this.closeStream(st);
    if (this.countPremature) {
      writeRst(this.out, st.id, ErrorCode.NO_ERROR);
      this.closeStream(st);
    }
  }
}
