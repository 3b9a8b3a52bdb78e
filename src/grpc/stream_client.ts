/**
 * A bidirectional streaming gRPC call on the project's HTTP/2 client codec, on a connection of its own (h2c, or
 * TLS with ALPN h2): messages are written as they come and read as they arrive, the call ends with the
 * server's grpc-status (trailers or trailers-only), a reset, or the connection going away. Received bytes are
 * acknowledged (HTTP/2 flow control) only while the reader keeps up, so a slow reader stops the server; a
 * message over `maxMessageBytes` fails the call with RESOURCE_EXHAUSTED. Used by xDS (ADS and per-type streams).
 */
import { HeaderMap } from "../http/headers.ts";
import { decodeGrpcMessage, httpToGrpcStatus } from "../http/grpc_util.ts";
import { ErrorCode } from "../http/h2/constants.ts";
import { H2ClientConnection } from "../http/h2/client.ts";
import type { H2Options } from "../http/h2/options.ts";
import { type H2Head, requestHead } from "../http/h2/head.ts";
import type { H2Stream, H2StreamHandler } from "../http/h2/stream.ts";
import { GrpcError } from "./client.ts";
import { encodeGrpcFrame, GrpcStatus } from "./frame.ts";

/** Where to open a call. */
export interface GrpcStreamTarget {
  host: string;
  port: number;
  /** TLS with ALPN h2 (default: h2c, prior knowledge). */
  tls?: boolean;
  /** :authority (default `host:port`). */
  authority?: string;
  /** Opens the byte connection instead of Deno.connect/connectTls (e.g. a cluster's TLS ConnectFn). */
  connect?: (target: GrpcStreamTarget) => Promise<Deno.Conn>;
}

/** Options of one call. */
export interface GrpcStreamOptions {
  /** Largest message accepted (default 64 MiB); a bigger one fails the call with RESOURCE_EXHAUSTED. */
  maxMessageBytes?: number;
  /** Extra request metadata (lower-case names). */
  metadata?: Record<string, string>;
  /** Unread received bytes above which the stream window is no longer replenished (default 4 MiB). */
  readHighWatermark?: number;
  /** HTTP/2 options of the connection. */
  h2?: H2Options;
  /** Aborts connecting. */
  signal?: AbortSignal;
}

/** Default largest message of a streaming call (Envoy's xDS limit). */
export const DEFAULT_STREAM_MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * Connects to `target` and opens a call to `path` ("/package.Service/Method"). Rejects with a GrpcError
 * (UNAVAILABLE) when the connection cannot be made. Close the returned call with `close()` in every case.
 */
export async function openGrpcStream(
  target: GrpcStreamTarget,
  path: string,
  opts: GrpcStreamOptions = {},
): Promise<GrpcStreamCall> {
  let conn: Deno.Conn;
  try {
    conn = await connectTarget(target, opts.signal);
  } catch (e) {
    throw new GrpcError(
      GrpcStatus.UNAVAILABLE,
      `Connect to ${target.host}:${target.port} failed: ${(e as Error).message}`,
    );
  }
  const call = new GrpcStreamCall(conn, opts);
  call.open(path, target.authority ?? `${hostText(target.host)}:${target.port}`);
  return call;
}

async function connectTarget(t: GrpcStreamTarget, signal?: AbortSignal): Promise<Deno.Conn> {
  if (t.connect) return await t.connect(t);
  if (!t.tls) return await Deno.connect({ hostname: t.host, port: t.port, signal } as Deno.ConnectOptions);
  const tls = await Deno.connectTls({ hostname: t.host, port: t.port, alpnProtocols: ["h2"] });
  try {
    const info = await tls.handshake();
    if (info.alpnProtocol !== "h2") throw new Error(`the server did not negotiate ALPN h2`);
  } catch (e) {
    tls.close();
    throw e;
  }
  return tls;
}

function hostText(h: string): string {
  return h.includes(":") ? `[${h}]` : h;
}

/** One bidirectional call; see the file comment. Made by `openGrpcStream`. */
export class GrpcStreamCall implements H2StreamHandler {
  readonly #h2: H2ClientConnection;
  readonly #closed: Promise<void>;
  readonly #max: number;
  readonly #watermark: number;
  readonly #metadata: Record<string, string>;
  #stream: H2Stream | null = null;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #deferred = 0;
  #waiter: ((v: void) => void) | null = null;
  #result: GrpcError | null | undefined = undefined; // undefined: open; null: OK end
  // frame decoding state: header bytes or the message being filled
  #hdr = new Uint8Array(5);
  #hdrLen = 0;
  #msg: Uint8Array | null = null;
  #msgLen = 0;
  #headers: HeaderMap | null = null;
  #onEnd: ((e: GrpcError | null) => void) | undefined;

  /** @internal use openGrpcStream. */
  constructor(conn: Deno.Conn, opts: GrpcStreamOptions) {
    this.#max = opts.maxMessageBytes ?? DEFAULT_STREAM_MAX_MESSAGE;
    this.#watermark = opts.readHighWatermark ?? 4 * 1024 * 1024;
    this.#metadata = opts.metadata ?? {};
    this.#h2 = new H2ClientConnection(conn, { ...opts.h2 });
    this.#closed = this.#h2.start().catch(() => {}).then(() => {
      this.#fail(new GrpcError(GrpcStatus.UNAVAILABLE, "Connection closed"));
    });
  }

  /** @internal sends the request head. */
  open(path: string, authority: string): void {
    const headers = new HeaderMap();
    headers.addLower("content-type", "application/grpc");
    headers.addLower("te", "trailers");
    headers.addLower("user-agent", "nuncio-grpc");
    for (const [k, v] of Object.entries(this.#metadata)) headers.addLower(k.toLowerCase(), v);
    const head: H2Head = requestHead("POST", path, authority, headers);
    const st = this.#h2.request(head, false, this);
    if (st === null) {
      this.#fail(new GrpcError(GrpcStatus.UNAVAILABLE, "No stream capacity on the connection"));
      return;
    }
    st.autoConsume = false;
    this.#stream = st;
  }

  /** The response headers once received (null before). */
  get responseHeaders(): HeaderMap | null {
    return this.#headers;
  }

  /** True once the call ended (status received, reset, closed or failed). */
  get ended(): boolean {
    return this.#result !== undefined;
  }

  /** Called once when the call ends: null for status OK, else the error (messages may still be queued). */
  set onEnd(fn: ((e: GrpcError | null) => void) | undefined) {
    this.#onEnd = fn;
  }

  /** Bytes written and still held by flow control or the socket. */
  get pendingBytes(): number {
    return this.#stream?.pendingBytes ?? 0;
  }

  /** Sends one message; false when the call has ended (the message is dropped). */
  write(message: Uint8Array): boolean {
    const st = this.#stream;
    if (st === null || this.#result !== undefined || st.isClosed) return false;
    st.sendData(encodeGrpcFrame(message), false);
    return true;
  }

  /** Half-closes: no more messages will be written. */
  closeSend(): void {
    const st = this.#stream;
    if (st === null || st.isClosed) return;
    st.sendData(new Uint8Array(0), true);
  }

  /**
   * The next message; null once the server ended the call with status OK. Rejects with a GrpcError when it
   * ended otherwise (after the messages received before it were read). Each message owns its ArrayBuffer
   * (the caller may detach it once done, e.g. xDS frees each response after handling it).
   */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const m = this.#queue.shift();
      if (m !== undefined) {
        this.#queuedBytes -= m.length + 5;
        this.#release();
        return m;
      }
      if (this.#result === null) return null;
      if (this.#result !== undefined) throw this.#result;
      await new Promise<void>((r) => this.#waiter = r);
    }
  }

  /** Cancels the call if still open (RST_STREAM CANCEL) and closes the connection; resolves when closed. */
  async close(): Promise<void> {
    if (this.#stream && !this.#stream.isClosed) this.#stream.reset(ErrorCode.CANCEL);
    this.#fail(new GrpcError(GrpcStatus.CANCELLED, "Cancelled"));
    this.#h2.close();
    await this.#closed;
  }

  // --- H2StreamHandler ---

  /** @internal */
  onHeaders(_st: H2Stream, head: H2Head, endStream: boolean): void {
    this.#headers = head.headers;
    if (head.status !== 200) {
      this.#abort(new GrpcError(httpToGrpcStatus(head.status), `HTTP status ${head.status}`));
      return;
    }
    const ct = head.headers.get("content-type") ?? "";
    if (!ct.startsWith("application/grpc")) {
      this.#abort(new GrpcError(GrpcStatus.UNKNOWN, `Unexpected content-type "${ct}"`));
      return;
    }
    if (endStream) this.#status(head.headers);
  }

  /** @internal */
  onData(st: H2Stream, data: Uint8Array, endStream: boolean): void {
    if (this.#result !== undefined) return;
    const err = this.#decode(data);
    if (err) {
      this.#abort(err);
      return;
    }
    if (this.#queuedBytes > this.#watermark) this.#deferred += data.length;
    else if (data.length > 0) st.consume(data.length);
    this.#wake();
    if (endStream) this.#fail(new GrpcError(GrpcStatus.INTERNAL, "Stream ended without grpc-status"));
  }

  /** @internal */
  onTrailers(_st: H2Stream, trailers: HeaderMap): void {
    this.#status(trailers);
  }

  /** @internal */
  onReset(_st: H2Stream, code: number): void {
    this.#fail(new GrpcError(GrpcStatus.UNAVAILABLE, `Stream reset (HTTP/2 error ${code})`));
  }

  // --- internals ---

  /** Splits `data` into messages (one allocation per message); an error for a bad or oversized frame. */
  #decode(data: Uint8Array): GrpcError | undefined {
    let p = 0;
    while (p < data.length) {
      if (this.#msg === null) {
        const take = Math.min(5 - this.#hdrLen, data.length - p);
        this.#hdr.set(data.subarray(p, p + take), this.#hdrLen);
        this.#hdrLen += take;
        p += take;
        if (this.#hdrLen < 5) break;
        const h = this.#hdr;
        if (h[0] !== 0) {
          return new GrpcError(GrpcStatus.INTERNAL, "Compressed gRPC messages are not supported");
        }
        const len = ((h[1] << 24) >>> 0) + (h[2] << 16) + (h[3] << 8) + h[4];
        if (len > this.#max) {
          return new GrpcError(
            GrpcStatus.RESOURCE_EXHAUSTED,
            `gRPC message of ${len} bytes exceeds the limit of ${this.#max} bytes`,
          );
        }
        this.#msg = new Uint8Array(len);
        this.#msgLen = 0;
      }
      const take = Math.min(this.#msg.length - this.#msgLen, data.length - p);
      this.#msg.set(data.subarray(p, p + take), this.#msgLen);
      this.#msgLen += take;
      p += take;
      if (this.#msgLen === this.#msg.length) {
        this.#queue.push(this.#msg);
        this.#queuedBytes += this.#msg.length + 5;
        this.#msg = null;
        this.#hdrLen = 0;
      }
    }
    return undefined;
  }

  /** The reader took messages: give back the window held while it lagged. */
  #release(): void {
    if (this.#deferred === 0 || this.#queuedBytes > this.#watermark) return;
    const n = this.#deferred;
    this.#deferred = 0;
    this.#stream?.consume(n);
  }

  #status(h: HeaderMap): void {
    const raw = h.get("grpc-status");
    const status = raw === undefined || raw === null ? GrpcStatus.UNKNOWN : Number(raw);
    if (status === GrpcStatus.OK && this.#msg === null && this.#hdrLen === 0) {
      this.#finish(null);
      return;
    }
    const msg = status === GrpcStatus.OK
      ? "Stream ended inside a message"
      : decodeGrpcMessage(h.get("grpc-message") ?? (raw == null ? "No grpc-status" : ""));
    this.#finish(new GrpcError(status === GrpcStatus.OK ? GrpcStatus.INTERNAL : status, msg));
  }

  /** Ends the call locally and resets the stream. */
  #abort(e: GrpcError): void {
    if (this.#stream && !this.#stream.isClosed) this.#stream.reset(ErrorCode.CANCEL);
    this.#fail(e);
  }

  #fail(e: GrpcError): void {
    this.#finish(e);
  }

  #finish(r: GrpcError | null): void {
    if (this.#result !== undefined) return;
    this.#result = r;
    this.#wake();
    const cb = this.#onEnd;
    this.#onEnd = undefined;
    cb?.(r);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.();
  }
}
