/**
 * A plain connection whose first bytes were already read (by the tls_inspector) and are handed back to the
 * filter chain by the first reads. Supports what the byte path uses: read, write, closeWrite, close, addresses.
 */

/** Wraps `inner`, replaying `prefix` before reading from the socket again; built once per inspected connection. */
export class PrefixedConn {
  readonly #inner: Deno.Conn;
  #prefix: Uint8Array | null;

  constructor(inner: Deno.Conn, prefix: Uint8Array) {
    this.#inner = inner;
    this.#prefix = prefix.length > 0 ? prefix : null;
  }

  /** Reads the replayed bytes first, then from the socket. */
  read(p: Uint8Array): Promise<number | null> {
    const pre = this.#prefix;
    if (pre === null) return this.#inner.read(p);
    const n = Math.min(p.length, pre.length);
    p.set(pre.subarray(0, n));
    this.#prefix = n === pre.length ? null : pre.subarray(n);
    return Promise.resolve(n);
  }

  /** Writes to the socket. */
  write(p: Uint8Array): Promise<number> {
    return this.#inner.write(p);
  }

  /** Half-closes the socket's write side. */
  closeWrite(): Promise<void> {
    return this.#inner.closeWrite();
  }

  /** Closes the socket. */
  close(): void {
    this.#inner.close();
  }

  /** Peer address. */
  get remoteAddr(): Deno.Addr {
    return this.#inner.remoteAddr;
  }

  /** Local address. */
  get localAddr(): Deno.Addr {
    return this.#inner.localAddr;
  }

  /** Sets TCP_NODELAY on the socket. */
  setNoDelay(on = true): void {
    (this.#inner as Deno.TcpConn).setNoDelay?.(on);
  }

  /** Keeps the event loop alive while the socket is open. */
  ref(): void {
    this.#inner.ref();
  }

  /** Lets the event loop exit while the socket is open. */
  unref(): void {
    this.#inner.unref();
  }

  /** Stream view of the socket (replayed bytes are not included; the byte path uses read()). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#inner.readable;
  }

  /** Stream view of the socket's write side. */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#inner.writable;
  }

  /** Closes the socket. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** This wrapper typed as the Deno.Conn the filter chain expects. */
  asConn(): Deno.Conn {
    return this as unknown as Deno.Conn;
  }
}
