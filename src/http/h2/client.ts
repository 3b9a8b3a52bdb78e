/** The client role: one multiplexed upstream connection opening streams within the peer's limits. */
import type { HeaderMap } from "../headers.ts";
import { ErrorCode, MAX_STREAM_ID } from "./constants.ts";
import type { H2ConnectionOptions, H2Transport } from "./core.ts";
import { beginHeaders, endHeaders } from "./frame.ts";
import { encodeRequestHead, type H2Head } from "./head.ts";
import { H2Session } from "./session.ts";
import { type H2Stream, type H2StreamHandler, ResetReason } from "./stream.ts";

/** An upstream HTTP/2 connection. Call `start()` to send the preface and begin reading. */
export class H2ClientConnection extends H2Session {
  #nextId = 1;

  /** Wraps `transport`; nothing is sent until `start()`. */
  constructor(transport: H2Transport, opts: H2ConnectionOptions = {}) {
    super(transport, true, opts);
  }

  /** Streams that may be opened now (0 after GOAWAY, on close, or at the peer's concurrency limit). */
  available(): number {
    if (this.isClosed || this.goawayReceived || this.goawaySent || this.#nextId > MAX_STREAM_ID) return 0;
    const n = this.peer.maxConcurrent - this.streams.size;
    return n > 0 ? n : 0;
  }

  /**
   * Opens a stream and sends the request head (with END_STREAM when `endStream`); null when no stream can be
   * opened (see `available`). Events go to `handler`.
   */
  request(head: H2Head, endStream: boolean, handler: H2StreamHandler): H2Stream | null {
    if (this.available() <= 0) return null;
    const st = this.openStream(this.#nextId, handler);
    this.#nextId += 2;
    const at = beginHeaders(this.out);
    encodeRequestHead(this.encoder, this.out, head);
    endHeaders(this.out, at, st.id, endStream, this.peer.maxFrameSize);
    st.headersSent = true;
    if (endStream) st.endQueued = st.localEnded = true;
    this.flush();
    return st;
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 0 || id >= this.#nextId;
  }

  protected onGoawayFrame(lastStreamId: number): void {
    for (const st of [...this.streams.values()]) {
      if (st.id <= lastStreamId) continue;
      this.closeStream(st);
      st.handler.onReset(st, ErrorCode.REFUSED_STREAM, ResetReason.REFUSED);
    }
    this.maybeDrained();
  }

  protected onHeaderBlock(id: number, endStream: boolean, map: HeaderMap, overflow: boolean): void {
    const st = this.streams.get(id);
    if (st === undefined) {
      if (this.isIdle(id)) {
        return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.headers_on_idle_stream");
      }
      this.stats.headers_cb_no_stream.inc();
      return;
    }
    if (st.headersReceived) return this.receiveTrailers(st, endStream, map, overflow);
    if (st.remoteEnded) return this.streamError(st, ErrorCode.STREAM_CLOSED);
    if (overflow) return this.streamError(st, ErrorCode.INTERNAL_ERROR);
    const head = this.validator.response(map);
    if (head === null || (head.status < 200 && endStream)) {
      this.stats.rx_messaging_error.inc();
      return this.streamError(st, ErrorCode.PROTOCOL_ERROR);
    }
    if (head.status < 200) return st.handler.onInformational?.(st, head);
    st.headersReceived = true;
    if (endStream) st.remoteEnded = true;
    st.handler.onHeaders(st, head, endStream);
    if (endStream && st.localEnded) this.closeStream(st);
  }
}
