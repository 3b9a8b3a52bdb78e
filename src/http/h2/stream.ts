/**
 * One HTTP/2 stream as the codec's users see it: the handler receiving its events and the methods sending
 * on it. State fields are public for the owning session and are not part of the API.
 */
import type { HeaderMap } from "../headers.ts";
import { ErrorCode } from "./constants.ts";
import type { H2Head } from "./head.ts";

/** Why a stream ended abnormally (second argument of onReset is the HTTP/2 error code). */
export const ResetReason = {
  /** The peer sent RST_STREAM. */
  REMOTE: 0,
  /** The codec reset it because the peer broke the protocol on this stream (the RST was sent). */
  LOCAL: 1,
  /** The connection closed or failed with the stream open. */
  CONNECTION: 2,
  /** Refused before processing (GOAWAY above the stream's id, or RST_STREAM REFUSED_STREAM): safe to retry. */
  REFUSED: 3,
} as const;

/** Why a stream ended abnormally. */
export type ResetReason = typeof ResetReason[keyof typeof ResetReason];

/**
 * Receives one stream's events. Every method runs synchronously inside the codec; `data` given to onData is a
 * view into the connection's read buffer, valid only until onData returns (copy it to keep it).
 */
export interface H2StreamHandler {
  /** The request head (server) or the final response head (client); `endStream` when no body follows. */
  onHeaders(stream: H2Stream, head: H2Head, endStream: boolean): void;
  /** A 1xx response head (client only). */
  onInformational?(stream: H2Stream, head: H2Head): void;
  /** Body bytes; with `autoConsume` off, call `stream.consume(n)` when they are taken (flow control). */
  onData(stream: H2Stream, data: Uint8Array, endStream: boolean): void;
  /** Trailers; the stream's inbound side has ended. */
  onTrailers(stream: H2Stream, trailers: HeaderMap): void;
  /** The stream ended abnormally; no more events follow. Not called for the caller's own `reset`. */
  onReset(stream: H2Stream, code: number, reason: ResetReason): void;
  /** Data held back by a `sendData` that returned false has all been queued for the socket. */
  onWritable?(stream: H2Stream): void;
}

/** What a stream needs from its connection (implemented by H2Session). */
export interface StreamOwner {
  /** Sends a response head. */
  respondFor(s: H2Stream, status: number, headers: HeaderMap, endStream: boolean): void;
  /** Sends or queues body bytes; true when nothing is held back. */
  sendDataFor(s: H2Stream, data: Uint8Array, endStream: boolean): boolean;
  /** Sends trailers (after any queued data), ending the stream. */
  sendTrailersFor(s: H2Stream, trailers: HeaderMap): void;
  /** Resets the stream. */
  resetFor(s: H2Stream, code: number): void;
  /** Returns `n` bytes of receive window. */
  consumeFor(s: H2Stream, n: number): void;
}

/** A stream of an H2ServerConnection or H2ClientConnection. */
export class H2Stream {
  /** Stream identifier. */
  readonly id: number;
  /** Receives this stream's events; may be replaced (e.g. inside the first onHeaders). */
  handler: H2StreamHandler;
  /** Free slot for the user's per-stream state. */
  user: unknown = undefined;
  /** When true (default) received DATA is acknowledged as soon as onData returns; else call consume(). */
  autoConsume = true;

  /** @internal */ readonly owner: StreamOwner;
  /** @internal */ sendWindow: number;
  /** @internal */ recvWindow: number;
  /** @internal */ recvUnacked = 0;
  /** @internal END_STREAM written to the output. */ localEnded = false;
  /** @internal END_STREAM received. */ remoteEnded = false;
  /** @internal END_STREAM requested (maybe still queued). */ endQueued = false;
  /** @internal */ closed = false;
  /** @internal a final (non-1xx) head was sent. */ headersSent = false;
  /** @internal a final head was received. */ headersReceived = false;
  /** @internal */ queue: Uint8Array[] | null = null;
  /** @internal */ queueOff = 0;
  /** @internal */ pending = 0;
  /** @internal */ pendingTrailers: HeaderMap | null = null;
  /** @internal */ inSendable = false;
  /** @internal */ wantWritable = false;
  /** @internal */ openedAt: number;
  /** @internal */ contentLength = -1;
  /** @internal */ received = 0;

  /** Made by the connection. */
  constructor(
    owner: StreamOwner,
    id: number,
    handler: H2StreamHandler,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.owner = owner;
    this.id = id;
    this.handler = handler;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.openedAt = 0;
  }

  /** Bytes accepted by sendData and not yet queued for the socket (flow control or backpressure). */
  get pendingBytes(): number {
    return this.pending;
  }

  /** True once the stream is closed (both sides ended, or reset). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Server: sends the response head (1xx heads may precede the final one). */
  respond(status: number, headers: HeaderMap, endStream = false): void {
    this.owner.respondFor(this, status, headers, endStream);
  }

  /**
   * Sends body bytes. The codec keeps a reference to `data` until it is written (do not modify it after).
   * Returns false when some bytes wait for flow-control window or socket space: wait for onWritable.
   */
  sendData(data: Uint8Array, endStream = false): boolean {
    return this.owner.sendDataFor(this, data, endStream);
  }

  /** Sends trailers after any queued data; ends the stream. */
  sendTrailers(trailers: HeaderMap): void {
    this.owner.sendTrailersFor(this, trailers);
  }

  /** Resets the stream with RST_STREAM `code` (default CANCEL); no onReset follows. */
  reset(code: number = ErrorCode.CANCEL): void {
    this.owner.resetFor(this, code);
  }

  /** Acknowledges `n` received body bytes (only needed with autoConsume off). */
  consume(n: number): void {
    this.owner.consumeFor(this, n);
  }
}
