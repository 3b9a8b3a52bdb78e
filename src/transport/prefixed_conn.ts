/**
 * A plain connection whose first bytes were already read (by the tls_inspector, or the proxy_protocol listener
 * filter after its header) and are handed back to the filter chain by the first reads. Supports what the byte
 * path uses: read, write, closeWrite, close, addresses (optionally others than the socket's: a PROXY header's).
 * Once the replayed bytes are consumed it exposes the socket's runtime resource id, so network/raw_io.ts reads
 * and writes the socket directly, as for any accepted connection.
 */

const RID: symbol | undefined = (() => {
  try {
    const internal =
      (Deno as unknown as Record<symbol, { core?: { internalRidSymbol?: symbol } } | undefined>)[
        (Deno as unknown as { internal: symbol }).internal
      ];
    const s = internal?.core?.internalRidSymbol;
    return typeof s === "symbol" ? s : undefined;
  } catch {
    return undefined;
  }
})();

/** True when `conn` is a wrapper whose local address a listener filter restored. */
export function isLocalRestored(conn: Deno.Conn | { readonly localAddr: Deno.Addr }): boolean {
  return conn instanceof PrefixedConn && conn.localRestored;
}

/** Wraps `inner`, replaying `prefix` before reading from the socket again; built once per connection. */
export class PrefixedConn {
  readonly #inner: Deno.Conn;
  #prefix: Uint8Array | null;
  /** Peer address: the socket's, or the one given (a PROXY header's source). */
  readonly remoteAddr: Deno.Addr;
  /** Local address: the socket's, or the one given (a PROXY header's destination, an original destination). */
  readonly localAddr: Deno.Addr;
  /** True when a listener filter restored the local address (here or in a wrapper below; Envoy's `localAddressRestored`). */
  readonly localRestored: boolean;

  constructor(inner: Deno.Conn, prefix: Uint8Array, remote?: Deno.NetAddr, local?: Deno.NetAddr) {
    this.#inner = inner;
    this.#prefix = prefix.length > 0 ? prefix : null;
    this.remoteAddr = remote ?? inner.remoteAddr;
    this.localAddr = local ?? inner.localAddr;
    this.localRestored = local !== undefined || isLocalRestored(inner);
  }

  /** The accepted socket under every wrapper (its descriptor carries the socket options). */
  get socket(): Deno.Conn {
    const inner = this.#inner;
    return inner instanceof PrefixedConn ? inner.socket : inner;
  }

  static {
    // the socket's resource id, once nothing is left to replay (raw_io then skips the wrapper)
    if (RID !== undefined) {
      Object.defineProperty(PrefixedConn.prototype, RID, {
        get(this: PrefixedConn): unknown {
          return this.#prefix === null ? (this.#inner as unknown as Record<symbol, unknown>)[RID] : undefined;
        },
      });
    }
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

  /** Sets TCP_NODELAY on the socket. */
  setNoDelay(on = true): void {
    (this.#inner as Deno.TcpConn).setNoDelay?.(on);
  }

  /** Sets SO_KEEPALIVE on the socket. */
  setKeepAlive(on = true): void {
    (this.#inner as Deno.TcpConn).setKeepAlive?.(on);
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
