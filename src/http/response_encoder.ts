/**
 * The codec side of a response: ActiveStream runs the encoder filters and the common header handling, then
 * hands the head, body and trailers to its connection's ResponseEncoder, which frames them for the wire
 * (HTTP/1.1: status line, content-length or chunked; HTTP/2: HEADERS/DATA frames on the stream).
 */
import { DONE } from "./filter.ts";
import type { HeaderMap } from "./headers.ts";
import type { ActiveStream } from "./active_stream.ts";
import { chunkFrame, encodeResponseHead, joinBytes, LAST_CHUNK, trailersBlock } from "./h1_glue.ts";

const EMPTY = new Uint8Array(0);

/** What ActiveStream needs from its codec to send a response; one per HTTP/1.1 connection or HTTP/2 stream. */
export interface ResponseEncoder {
  /** The accepted upgrade type of the current request ("" when none; always "" on HTTP/2). */
  readonly upgradeType: string;
  /**
   * Frames and sends the response head. `knownLength` is the body length when the caller knows it (local
   * replies), else -1. Finishes the stream (`s.finishResponse()`) when nothing follows.
   */
  encodeHeaders(
    s: ActiveStream,
    status: number,
    headers: HeaderMap,
    endStream: boolean,
    knownLength: number,
  ): Promise<void>;
  /** Frames and sends body bytes (resolves once they are handed to the socket: backpressure). */
  encodeData(s: ActiveStream, data: Uint8Array, endStream: boolean): Promise<void>;
  /** Sends trailers and ends the response. */
  encodeTrailers(s: ActiveStream, trailers: HeaderMap): Promise<void>;
  /** Aborts the stream on the wire (HTTP/1.1 closes the connection; HTTP/2 sends RST_STREAM). */
  resetStream(s: ActiveStream): void;
}

/** What the HTTP/1.1 encoder needs from its connection. */
export interface H1Writer {
  /** Writes all of `data` (resolves when written). */
  write(data: Uint8Array): Promise<void>;
  /** Half-closes the downstream after an upgraded stream's upstream side ended. */
  endTunnelWrite(): void;
  /** True when this stream must be the connection's last (max_requests_per_connection). */
  closeAfterThisStream(s: ActiveStream): boolean;
  /** Closes the downstream connection. */
  closeNow(): void;
  /** Set when the listener drains: responses carry Connection: close. */
  readonly draining: boolean;
  /** Upgrade type of the current request when it is an accepted upgrade, else "". */
  readonly upgradeType: string;
  /** Counts an accepted upgrade (101). */
  countUpgrade(): void;
}

/**
 * HTTP/1.1 response framing, one per connection (one stream at a time, so the per-response state lives here
 * and nothing is allocated per request).
 */
export class H1ResponseEncoder implements ResponseEncoder {
  #chunked = false;
  #closeDelimited = false;
  #noBody = false;
  #pendingHead: Uint8Array | null = null;

  /** Encodes for `conn`. */
  constructor(readonly conn: H1Writer) {}

  get upgradeType(): string {
    return this.conn.upgradeType;
  }

  encodeHeaders(
    s: ActiveStream,
    status: number,
    h: HeaderMap,
    endStream: boolean,
    knownLength: number,
  ): Promise<void> {
    const conn = this.conn;
    this.#chunked = this.#closeDelimited = false;
    this.#pendingHead = null;
    const noBody = this.#noBody = (status < 200 && status !== 101) || status === 204 || status === 304 ||
      s.request.method === "HEAD";
    let upgrade = false;
    if (status === 101 && conn.upgradeType) {
      upgrade = true;
      s.upgraded = true;
      h.addLower("connection", "upgrade");
      h.addLower("upgrade", conn.upgradeType);
      conn.countUpgrade();
    } else if (noBody) {
      if (status === 204 || (status < 200)) h.remove("content-length");
    } else if (endStream) {
      h.set("content-length", knownLength > 0 ? String(knownLength) : "0");
    } else if (knownLength >= 0) {
      h.set("content-length", String(knownLength));
    } else if (!h.has("content-length")) {
      if (s.versionMinor === 1) {
        h.addLower("transfer-encoding", "chunked");
        this.#chunked = true;
      } else {
        this.#closeDelimited = true;
      }
    }
    const close = !upgrade && (s.closeConnection || !s.keepAlive || this.#closeDelimited ||
      conn.draining || conn.closeAfterThisStream(s));
    if (close) {
      s.closeConnection = true;
      h.addLower("connection", "close");
    } else if (s.versionMinor === 0) {
      h.addLower("connection", "keep-alive");
    }
    const head = encodeResponseHead(status, h, s.versionMinor);
    if (endStream || (noBody && !upgrade)) return this.#writeLast(s, head);
    this.#pendingHead = head;
    return DONE;
  }

  async #writeLast(s: ActiveStream, head: Uint8Array): Promise<void> {
    await this.conn.write(head);
    s.finishResponse();
  }

  async encodeData(s: ActiveStream, data: Uint8Array, endStream: boolean): Promise<void> {
    const len = data.length;
    let out: Uint8Array;
    if (this.#noBody) {
      out = EMPTY;
    } else if (this.#chunked) {
      out = len > 0 ? chunkFrame(data, endStream) : endStream ? LAST_CHUNK : EMPTY;
    } else {
      out = data;
    }
    const conn = this.conn;
    const head = this.#pendingHead;
    if (head) {
      this.#pendingHead = null;
      if (out.length === 0) out = head;
      else if (out.length <= 16384) {
        out = joinBytes(head, out);
      } else {
        await conn.write(head);
      }
    }
    if (out.length > 0) await conn.write(out);
    if (endStream) {
      if (s.upgraded) conn.endTunnelWrite();
      s.finishResponse();
    }
  }

  async encodeTrailers(s: ActiveStream, trailers: HeaderMap): Promise<void> {
    if (!this.#chunked) return await this.encodeData(s, EMPTY, true);
    const head = this.#pendingHead;
    this.#pendingHead = null;
    if (head) await this.conn.write(head);
    await this.conn.write(trailersBlock(trailers));
    s.finishResponse();
  }

  resetStream(_s: ActiveStream): void {
    this.conn.closeNow();
  }
}
