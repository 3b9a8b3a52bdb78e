/**
 * The client side of HTTP/1.1 on one upstream connection (the counterpart of `h2/client.ts`; Pingora's
 * `protocols/http/v1/client.rs`): it owns the connection's read buffer and the read the pool keeps pending
 * while the connection is idle, parses response heads with Envoy's limits (1xx interim heads absorbed), and
 * frames the body (Content-Length, chunked, close-delimited; none for HEAD, 204, 304 and 1xx) without copying
 * body bytes. Proxy logic (the router, mirrors, health checks) drives it; it never writes.
 *
 * The hot path (the router) drives it without closures or async wrappers: `read()` hands back the runtime's
 * read promise as is, `received(n)` books what arrived, and `readHead`/`nextBody` are synchronous. The slow
 * users (mirrors, health checks) take `readResponseHead`/`skipBody`.
 */
import { connRead } from "../../network/raw_io.ts";
import type { HeaderMap } from "../headers.ts";
import { ChunkedDecoder } from "./chunked.ts";
import { parseResponseHead, responseHasNoBody } from "./response.ts";
import { type H1Limits, H1ParseError, type HeadScanState, type ResponseHead } from "./types.ts";

/** Envoy's defaults for upstream response heads: 60 KiB and 100 fields. */
export const RESPONSE_LIMITS: H1Limits = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };

/**
 * The largest read buffer of a connection, reached while bodies stream (Envoy reads 16 KiB at a time); a head
 * larger than it grows the buffer up to the head limit for that response only.
 */
export const CLIENT_READ_BUF_SIZE = 16 * 1024;
/**
 * The buffer a connection starts with, allocated on its first read (a connection that never reads HTTP/1.1,
 * such as tcp_proxy's, holds none). A read that fills it doubles it for the next read, up to
 * CLIENT_READ_BUF_SIZE: a pooled connection serving small responses keeps 4 KiB, not 16.
 */
export const CLIENT_FIRST_BUF_SIZE = 4 * 1024;

const NO_BUFFER = new Uint8Array(0);

/** How the body of the current response is framed. */
export const BodyFraming = {
  /** No body (HEAD, 1xx, 204, 304, a CONNECT 2xx). */
  None: 0,
  /** Content-Length bytes (maybe 0). */
  Length: 1,
  /** Transfer-Encoding: chunked. */
  Chunked: 2,
  /** Until the upstream closes (no length, or a 101 tunnel): never reusable. */
  Close: 3,
} as const;
/** One of BodyFraming. */
export type BodyFraming = typeof BodyFraming[keyof typeof BodyFraming];

/** What `nextBody` found. */
export const BodyEvent = {
  /** Body bytes in buf[dataStart, dataEnd). */
  Data: 0,
  /** Nothing buffered: `read()` then `received(n)`. */
  More: 1,
  /** The body is complete (`trailers` set for a chunked body that had some; `reusable` decided). */
  Done: 2,
} as const;
/** One of BodyEvent. */
export type BodyEvent = typeof BodyEvent[keyof typeof BodyEvent];

/** Thrown by `readResponseHead`/`skipBody` when the upstream closes before the message ended. */
export class H1ClosedError extends Error {
  constructor(where: string) {
    super(`Upstream closed ${where}`);
    this.name = "H1ClosedError";
  }
}

/** The HTTP/1.1 client codec of one upstream connection; one per connection, reused by every response. */
export class H1ClientCodec {
  /** The socket it reads from. */
  readonly conn: Deno.Conn;
  /** The read buffer; bytes [start, end) are received and not consumed. Empty until the first read. */
  buf: Uint8Array = NO_BUFFER;
  /** Start of the unconsumed bytes. */
  start = 0;
  /** End of the received bytes. */
  end = 0;
  /**
   * The read the pool keeps in flight while the connection is idle (it lands at offset 0): `read()` hands it
   * to the next user. Null when none is pending.
   */
  pendingRead: Promise<number | null> | null = null;
  /** The current response's head (null until parsed). */
  head: ResponseHead | null = null;
  /** The current response's body framing (valid once `head` is set). */
  framing: BodyFraming = BodyFraming.None;
  /** The last Data event's slice of `buf`. */
  dataStart = 0;
  /** End of the last Data event's slice. */
  dataEnd = 0;
  /** Trailers of a chunked body (Done), or null. */
  trailers: HeaderMap | null = null;
  /** Decided at Done: the connection may carry another request (keep-alive, nothing extra buffered). */
  reusable = false;
  /** 1xx interim heads absorbed for the current response. */
  interim = 0;
  readonly #limits: H1Limits;
  readonly #scan: HeadScanState = { scanned: 0 };
  #remaining = 0;
  #chunked: ChunkedDecoder | null = null;
  #eof = false;
  /** Bytes the read in flight may fill (its buffer's free space). */
  #asked = 0;
  /** The last read filled its space: the next read from an empty buffer gets a bigger one. */
  #filled = false;

  /** A codec reading `conn` into its own buffer, heads checked against `limits`. */
  constructor(conn: Deno.Conn, opts: { limits?: H1Limits } = {}) {
    this.conn = conn;
    this.#limits = opts.limits ?? RESPONSE_LIMITS;
  }

  /** An empty buffer before a read: allocated on first use, doubled after a read that filled it (capped). */
  #freshBuffer(): void {
    const size = this.buf.length;
    if (size === 0) this.buf = new Uint8Array(CLIENT_FIRST_BUF_SIZE);
    else if (this.#filled && size < CLIENT_READ_BUF_SIZE) this.buf = new Uint8Array(size * 2);
    this.#filled = false;
  }

  /** True once the upstream closed (a read returned end of stream). */
  get closed(): boolean {
    return this.#eof;
  }

  /**
   * Starts the idle read that notices a peer close (the pool, when the connection is parked): it lands at
   * offset 0 of the buffer, and the next user's `read()` takes it over. Returns the read's promise.
   */
  armIdleRead(): Promise<number | null> {
    this.start = this.end = 0;
    this.#freshBuffer();
    this.#asked = this.buf.length;
    let p: Promise<number | null>;
    try {
      p = connRead(this.conn, this.buf);
    } catch (e) {
      p = Promise.reject(e);
    }
    this.pendingRead = p;
    return p;
  }

  /**
   * Reads more after `end` (or takes over the pending idle read); pass what it resolves to `received`. Moves
   * unconsumed bytes to the front when the buffer is full, and grows it while a response head is larger
   * than the buffer (the parser enforces the head limit). Rejects as the socket read does.
   */
  read(): Promise<number | null> {
    const p = this.pendingRead;
    if (p !== null) {
      this.pendingRead = null;
      return p;
    }
    if (this.start === this.end) {
      this.start = this.end = 0;
      this.#freshBuffer();
    } else if (this.end === this.buf.length) this.#makeRoom();
    const into = this.buf.subarray(this.end);
    this.#asked = into.length;
    try {
      return connRead(this.conn, into);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #makeRoom(): void {
    const buf = this.buf;
    const start = this.start;
    if (start > 0) {
      buf.copyWithin(0, start, this.end);
      this.end -= start;
      this.start = 0;
      return;
    }
    // the whole buffer is one unfinished head (or chunk-size line / trailer block)
    if (this.head !== null || buf.length > this.#limits.maxHeadersBytes) {
      throw new H1ParseError(502, "http1.headers_too_large", "Response head too large");
    }
    const bigger = new Uint8Array(buf.length * 2);
    bigger.set(buf);
    this.buf = bigger;
  }

  /**
   * Books the outcome of a `read()`: true when bytes arrived, or when the close ends a close-delimited body;
   * false when the upstream closed before the message ended.
   */
  received(n: number | null): boolean {
    if (n !== null && n > 0) {
      this.end += n;
      this.#filled = n === this.#asked;
      return true;
    }
    this.#eof = true;
    return this.head !== null && this.framing === BodyFraming.Close;
  }

  /**
   * Parses the response head from the buffered bytes, absorbing 1xx interim heads (not 101); null while
   * incomplete. Sets `head` and `framing` for the request `method`. Throws H1ParseError (502) on bad input.
   */
  readHead(method: string): ResponseHead | null {
    for (;;) {
      if (this.end === this.start) return null;
      const head = parseResponseHead(this.buf, this.start, this.end, this.#limits, this.#scan);
      if (head === null) return null;
      this.start = head.headEnd;
      const status = head.status;
      if (status < 200 && status !== 101) {
        this.interim++;
        continue;
      }
      this.head = head;
      let framing: BodyFraming;
      if (status === 101) framing = BodyFraming.Close;
      else if (responseHasNoBody(status, method)) framing = BodyFraming.None;
      else if (method === "CONNECT" && status < 300) framing = BodyFraming.None;
      else if (head.chunked) {
        framing = BodyFraming.Chunked;
        if (this.#chunked === null) this.#chunked = new ChunkedDecoder(this.#limits, 502);
        else this.#chunked.reset();
      } else if (head.contentLength >= 0) {
        framing = BodyFraming.Length;
        this.#remaining = head.contentLength;
      } else framing = BodyFraming.Close;
      this.framing = framing;
      return head;
    }
  }

  /** The next body event from the buffered bytes (see BodyEvent). Throws H1ParseError on bad chunking. */
  nextBody(): BodyEvent {
    const start = this.start;
    const end = this.end;
    switch (this.framing) {
      case BodyFraming.Length: {
        const rem = this.#remaining;
        if (rem === 0) return this.#done();
        const avail = end - start;
        if (avail === 0) return BodyEvent.More;
        const take = rem < avail ? rem : avail;
        this.dataStart = start;
        this.dataEnd = this.start = start + take;
        this.#remaining = rem - take;
        return BodyEvent.Data;
      }
      case BodyFraming.Chunked: {
        const r = this.#chunked!.next(this.buf, start, end);
        this.start = r.consumed;
        if (r.kind === "data") {
          this.dataStart = r.start;
          this.dataEnd = r.end;
          return BodyEvent.Data;
        }
        if (r.kind === "done") {
          this.trailers = r.trailers;
          return this.#done();
        }
        return BodyEvent.More;
      }
      case BodyFraming.Close: {
        if (end > start) {
          this.dataStart = start;
          this.dataEnd = this.start = end;
          return BodyEvent.Data;
        }
        return this.#eof ? this.#done() : BodyEvent.More;
      }
      default:
        return this.#done();
    }
  }

  #done(): BodyEvent {
    this.reusable = this.framing !== BodyFraming.Close && !this.#eof && this.head!.keepAlive &&
      this.start === this.end;
    return BodyEvent.Done;
  }

  /** Bytes of a Content-Length body still to come (0 for other framings). */
  get remaining(): number {
    return this.framing === BodyFraming.Length ? this.#remaining : 0;
  }

  /** Forgets the current response (the connection goes back to its pool or closes); keeps the buffer. */
  endResponse(): void {
    this.head = null;
    this.trailers = null;
    this.framing = BodyFraming.None;
    this.reusable = false;
    this.interim = 0;
    this.#scan.scanned = 0;
    this.start = this.end = 0;
    if (this.buf.length > CLIENT_READ_BUF_SIZE && this.pendingRead === null) {
      this.buf = new Uint8Array(CLIENT_READ_BUF_SIZE); // a large head was a one-off
    }
  }

  /**
   * Reads until a final response head for `method` is parsed (the slow path: mirrors, health checks).
   * Throws H1ParseError on a malformed head, H1ClosedError when the upstream closes first.
   */
  async readResponseHead(method: string): Promise<ResponseHead> {
    for (;;) {
      const head = this.readHead(method);
      if (head !== null) return head;
      if (!this.received(await this.read())) throw new H1ClosedError("before the response head");
    }
  }

  /**
   * Reads the current response's body and drops it (the slow path); past `maxBytes` it stops reading and the
   * connection is not reusable. Returns `reusable`. Throws as `readResponseHead`.
   */
  async skipBody(maxBytes = Infinity): Promise<boolean> {
    let total = 0;
    for (;;) {
      const ev = this.nextBody();
      if (ev === BodyEvent.Done) return this.reusable;
      if (ev === BodyEvent.Data) {
        total += this.dataEnd - this.dataStart;
        if (total > maxBytes) return this.reusable = false;
        continue;
      }
      if (!this.received(await this.read())) throw new H1ClosedError("inside the response body");
    }
  }
}
