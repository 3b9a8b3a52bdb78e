/** The server role: streams opened by the peer's HEADERS, request validation, graceful shutdown. */
import type { HeaderMap } from "../headers.ts";
import { ErrorCode, MAX_STREAM_ID } from "./constants.ts";
import type { H2ConnectionOptions, H2Transport } from "./core.ts";
import { writeGoaway, writeRst } from "./frame.ts";
import { H2Session } from "./session.ts";
import type { H2StreamHandler } from "./stream.ts";

/**
 * A downstream HTTP/2 connection. Each new stream starts with `handler` (its onHeaders gets the request
 * head and may set `stream.handler`). Call `start()` to send SETTINGS and begin reading.
 */
export class H2ServerConnection extends H2Session {
  readonly #handler: H2StreamHandler;
  #shuttingDown = false;

  /** Wraps `transport`; nothing is sent until `start()`. */
  constructor(transport: H2Transport, handler: H2StreamHandler, opts: H2ConnectionOptions = {}) {
    super(transport, false, opts);
    this.#handler = handler;
    this.countPremature = true;
  }

  /**
   * Graceful shutdown (RFC 9113 §6.8): GOAWAY with the largest stream id, then after a PING round trip
   * GOAWAY with the last stream actually accepted; closes when the open streams finish. Resolves when
   * closed (the caller bounds the wait and calls `close()` if needed).
   */
  shutdown(): Promise<void> {
    if (!this.#shuttingDown && !this.isClosed) {
      this.#shuttingDown = true;
      writeGoaway(this.out, MAX_STREAM_ID, ErrorCode.NO_ERROR);
      this.stats.goaway_sent.inc();
      void this.ping().then(() => this.goaway(ErrorCode.NO_ERROR, this.lastPeerStreamId));
    }
    return this.closed;
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 0 || id > this.lastPeerStreamId;
  }

  protected onGoawayFrame(): void {
    this.maybeDrained();
  }

  protected onHeaderBlock(id: number, endStream: boolean, map: HeaderMap, overflow: boolean): void {
    if ((id & 1) === 0) return this.connectionError(ErrorCode.PROTOCOL_ERROR, "http2.even_stream_id");
    const open = this.streams.get(id);
    if (open !== undefined) return this.receiveTrailers(open, endStream, map, overflow);
    if (id <= this.lastPeerStreamId) {
      this.stats.headers_cb_no_stream.inc();
      return;
    }
    this.lastPeerStreamId = id;
    if (this.goawaySent) return;
    if (this.streams.size >= this.o.max_concurrent_streams) {
      this.stats.stream_refused_errors.inc();
      return this.#refuse(id, ErrorCode.REFUSED_STREAM);
    }
    if (overflow) return this.#refuse(id, ErrorCode.INTERNAL_ERROR);
    const head = this.validator.request(map, this.o.allow_connect);
    const cl = this.validator.contentLength;
    if (head === null || (endStream && cl > 0)) {
      this.stats.rx_messaging_error.inc();
      return this.#refuse(id, ErrorCode.PROTOCOL_ERROR);
    }
    const st = this.openStream(id, this.#handler);
    st.headersReceived = true;
    st.contentLength = cl;
    st.remoteEnded = endStream;
    st.handler.onHeaders(st, head, endStream);
  }

  #refuse(id: number, code: number): void {
    writeRst(this.out, id, code);
    this.stats.tx_reset.inc();
  }
}
