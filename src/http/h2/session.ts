/**
 * The receive half shared by both roles: header block assembly (bounded CONTINUATION), DATA with both
 * flow-control windows, RST_STREAM (premature reset accounting) and stream WINDOW_UPDATE.
 */
import { HeaderMap } from "../headers.ts";
import { ErrorCode, Flag, FrameType, MAX_WINDOW } from "./constants.ts";
import type { H2ConnectionOptions, H2Transport } from "./core.ts";
import { readU32 } from "./frame.ts";
import { HeadValidator } from "./head.ts";
import { HpackResult } from "./hpack.ts";
import { type H2Stream, ResetReason } from "./stream.ts";
import { H2Streams } from "./streams.ts";

/** Base of both connection roles (not used directly). */
export abstract class H2Session extends H2Streams {
  protected readonly validator = new HeadValidator();
  #hdrBuf = new Uint8Array(0);
  #hdrLen = 0;
  #hdrEnd = 0;

  constructor(transport: H2Transport, isClient: boolean, opts: H2ConnectionOptions) {
    super(transport, isClient, opts);
  }

  /** A decoded header block for stream `id` (role-specific handling). */
  protected abstract onHeaderBlock(id: number, endStream: boolean, map: HeaderMap, overflow: boolean): void;
  /** True when `id` names a stream that was never opened. */
  protected abstract isIdle(id: number): boolean;

  protected onStreamFrame(
    type: number,
    flags: number,
    id: number,
    b: Uint8Array,
    s: number,
    e: number,
  ): void {
    if (id === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.stream_id_zero");
    switch (type) {
      case FrameType.DATA:
        return this.#data(flags, id, b, s, e);
      case FrameType.HEADERS:
        return this.#headers(flags, id, b, s, e);
      case FrameType.CONTINUATION:
        return this.#continuation(flags, id, b, s, e);
      case FrameType.RST_STREAM:
        return this.#rst(id, b, s, e);
      case FrameType.WINDOW_UPDATE:
        return this.#windowUpdate(id, readU32(b, s) & 0x7fffffff);
      case FrameType.PRIORITY: {
        if (e - s !== 5) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, "http2.priority_size");
        if ((readU32(b, s) & 0x7fffffff) === id) {
          const st = this.streams.get(id);
          if (st) this.streamError(st, ErrorCode.PROTOCOL_ERROR);
        }
        return;
      }
    }
  }

  #headers(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (flags & Flag.PADDED) {
      if (s >= e) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.bad_padding");
      const pad = b[s++];
      if (pad > e - s) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.bad_padding");
      e -= pad;
    }
    if (flags & Flag.PRIORITY) {
      if (e - s < 5) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.bad_priority");
      if ((readU32(b, s) & 0x7fffffff) === id) {
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.self_dependency");
      }
      s += 5;
    }
    if (flags & Flag.END_HEADERS) return this.#block(id, (flags & Flag.END_STREAM) !== 0, b, s, e);
    this.continuationFor = id;
    this.#hdrEnd = flags & Flag.END_STREAM;
    this.#hdrLen = 0;
    this.#append(b, s, e);
  }

  #continuation(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    if (this.continuationFor !== id) {
      return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.unexpected_continuation");
    }
    if (!this.#append(b, s, e)) return;
    if (flags & Flag.END_HEADERS) {
      this.continuationFor = 0;
      this.#block(id, this.#hdrEnd !== 0, this.#hdrBuf, 0, this.#hdrLen);
      if (this.#hdrBuf.length > 65536) this.#hdrBuf = new Uint8Array(0);
    }
  }

  #append(b: Uint8Array, s: number, e: number): boolean {
    const n = this.#hdrLen + e - s;
    if (n > 2 * this.o.max_header_list_size + this.o.max_frame_size) {
      this.stats.header_overflow.inc();
      this.connectionError(ErrorCode.ENHANCE_YOUR_CALM, "http2.header_block_too_large");
      return false;
    }
    if (n > this.#hdrBuf.length) {
      const nb = new Uint8Array(Math.max(n, this.#hdrBuf.length * 2, 4096));
      nb.set(this.#hdrBuf.subarray(0, this.#hdrLen));
      this.#hdrBuf = nb;
    }
    this.#hdrBuf.set(b.subarray(s, e), this.#hdrLen);
    this.#hdrLen = n;
    return true;
  }

  #block(id: number, endStream: boolean, b: Uint8Array, s: number, e: number): void {
    const map = new HeaderMap();
    const r = this.decoder.decode(b, s, e, map, this.o.max_header_list_size, this.o.max_headers_count);
    if (r === HpackResult.ERROR) {
      return this.connectionError(ErrorCode.COMPRESSION_ERROR, "http2.hpack_error");
    }
    if (r === HpackResult.OVERFLOW) this.stats.header_overflow.inc();
    this.onHeaderBlock(id, endStream, map, r === HpackResult.OVERFLOW);
  }

  #data(flags: number, id: number, b: Uint8Array, s: number, e: number): void {
    const flowLen = e - s;
    if (flags & Flag.PADDED) {
      if (s >= e) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.bad_padding");
      const pad = b[s++];
      if (pad > e - s) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.bad_padding");
      e -= pad;
    }
    if (!this.connConsumed(flowLen)) return;
    const st = this.streams.get(id);
    if (st === undefined) {
      if (this.isIdle(id)) this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.data_on_idle_stream");
      return; // a stream we closed or reset: its in-flight data is dropped
    }
    if (st.remoteEnded) return this.streamError(st, ErrorCode.STREAM_CLOSED);
    if (!st.headersReceived) return this.streamError(st, ErrorCode.PROTOCOL_ERROR);
    if (flowLen > st.recvWindow) return this.streamError(st, ErrorCode.FLOW_CONTROL_ERROR);
    st.recvWindow -= flowLen;
    const n = e - s;
    if (flowLen > n) this.consumeFor(st, flowLen - n);
    st.received += n;
    const end = (flags & Flag.END_STREAM) !== 0;
    if (
      st.contentLength >= 0 && (st.received > st.contentLength || (end && st.received !== st.contentLength))
    ) {
      this.stats.rx_messaging_error.inc();
      return this.streamError(st, ErrorCode.PROTOCOL_ERROR);
    }
    if (end) st.remoteEnded = true;
    st.handler.onData(st, b.subarray(s, e), end);
    if (st.autoConsume && n > 0) this.consumeFor(st, n);
    if (end && st.localEnded) this.closeStream(st);
  }

  #rst(id: number, b: Uint8Array, s: number, e: number): void {
    if (e - s !== 4) return this.connectionError(ErrorCode.FRAME_SIZE_ERROR, "http2.rst_size");
    const st = this.streams.get(id);
    if (st === undefined) {
      if (this.isIdle(id)) this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.rst_on_idle_stream");
      return;
    }
    const code = readU32(b, s);
    this.stats.rx_reset.inc();
    if (
      this.countPremature && this.readMono() - st.openedAt < this.o.premature_reset_min_stream_lifetime_ms
    ) this.premature++;
    this.closeStream(st);
    // RST NO_ERROR after a complete response only asks us to stop sending the request (RFC 9113 §8.1)
    if (st.remoteEnded && code === ErrorCode.NO_ERROR) return;
    st.handler.onReset(
      st,
      code,
      code === ErrorCode.REFUSED_STREAM ? ResetReason.REFUSED : ResetReason.REMOTE,
    );
  }

  #windowUpdate(id: number, inc: number): void {
    const st = this.streams.get(id);
    if (st === undefined) {
      if (this.isIdle(id)) {
        this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.window_update_on_idle_stream");
      }
      return;
    }
    if (inc === 0) return this.streamError(st, ErrorCode.PROTOCOL_ERROR);
    st.sendWindow += inc;
    if (st.sendWindow > MAX_WINDOW) return this.streamError(st, ErrorCode.FLOW_CONTROL_ERROR);
    this.wake(st);
  }

  /** A second header block on `st`: trailers, which must end the stream. */
  protected receiveTrailers(st: H2Stream, endStream: boolean, map: HeaderMap, overflow: boolean): void {
    if (st.remoteEnded) return this.streamError(st, ErrorCode.STREAM_CLOSED);
    if (overflow) return this.streamError(st, ErrorCode.INTERNAL_ERROR);
    if (
      !endStream || !this.validator.trailers(map) ||
      (st.contentLength >= 0 && st.received !== st.contentLength)
    ) {
      this.stats.rx_messaging_error.inc();
      return this.streamError(st, ErrorCode.PROTOCOL_ERROR);
    }
    st.remoteEnded = true;
    this.stats.trailers.inc();
    st.handler.onTrailers(st, map);
    if (st.localEnded) this.closeStream(st);
  }
}
