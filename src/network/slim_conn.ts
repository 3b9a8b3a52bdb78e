/**
 * An accepted plain TCP socket held by its runtime resource id alone.
 *
 * Deno's `TcpConn` keeps, for as long as the connection lives, its two address objects (the runtime builds
 * them in dictionary mode, with a map each: ~0.27 KiB apiece), a Set for pending reads, and its own fields:
 * ~0.9 KiB per connection. nuncio reads and writes through the resource id (network/raw_io.ts) and formats
 * the addresses once, so a keep-alive connection waiting for its next request carried all of it for nothing.
 * The listener swaps an accepted `TcpConn` for a `SlimTcpConn` before the filter chain sees it and lets the
 * `TcpConn` go: the socket is a runtime resource, closed only by an explicit close, never by the collector.
 *
 * It keeps the resource id, the descriptor (readable under Deno's own `Deno.internal.fd` symbol, so
 * transport/sockopt.ts finds it) and the two addresses as host strings and ports; `remoteAddr`/`localAddr`
 * build the address objects on demand. Reads, writes, close and half-close are the runtime's ops (what
 * `TcpConn` calls); `setNoDelay`/`setKeepAlive` go through libc (transport/sockopt.ts) on the descriptor, since
 * the runtime's socket-option ops are not reachable by resource id from JavaScript.
 */
import { descriptorSymbol, setSocketInt } from "../transport/sockopt.ts";
import { FULL_CORE } from "./raw_io.ts";

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SOL_SOCKET = 1;
const SO_KEEPALIVE = 9;

/** Stream views made on demand (rarely: the byte path reads and writes by id), kept per connection. */
const streams = new WeakMap<SlimTcpConn, {
  readable?: ReadableStream<Uint8Array<ArrayBuffer>>;
  writable?: WritableStream<Uint8Array<ArrayBufferLike>>;
}>();

/** The last local host seen: a listener's connections share one string for it. */
let lastLocalHost = "";

/** See the module comment. Built by `slimTcpConn`. */
export class SlimTcpConn {
  readonly #rid: number;
  readonly #fd: number;
  readonly #remoteHost: string;
  readonly #remotePort: number;
  readonly #localHost: string;
  readonly #localPort: number;

  constructor(rid: number, fd: number, remote: Deno.NetAddr, local: Deno.NetAddr) {
    this.#rid = rid;
    this.#fd = fd;
    this.#remoteHost = remote.hostname;
    this.#remotePort = remote.port;
    const host = local.hostname;
    this.#localHost = host === lastLocalHost ? lastLocalHost : (lastLocalHost = host);
    this.#localPort = local.port;
  }

  /**
   * The resource id where network/raw_io.ts looks for it and the descriptor where transport/sockopt.ts does,
   * as accessors on the prototype (symbol-keyed own properties would give each connection a property array).
   */
  static define(ridKey: symbol, fdKey: symbol): void {
    if (Object.getOwnPropertySymbols(SlimTcpConn.prototype).includes(ridKey)) return;
    Object.defineProperty(SlimTcpConn.prototype, ridKey, {
      get(this: SlimTcpConn): number {
        return this.#rid;
      },
    });
    Object.defineProperty(SlimTcpConn.prototype, fdKey, {
      get(this: SlimTcpConn): number {
        return this.#fd;
      },
    });
  }

  get remoteAddr(): Deno.NetAddr {
    return { transport: "tcp", hostname: this.#remoteHost, port: this.#remotePort };
  }

  get localAddr(): Deno.NetAddr {
    return { transport: "tcp", hostname: this.#localHost, port: this.#localPort };
  }

  /** Reads into `p`: the byte count, or null at end of stream (as `Deno.Conn.read`). */
  async read(p: Uint8Array): Promise<number | null> {
    if (p.length === 0) return 0;
    const n = await FULL_CORE!.read(this.#rid, p);
    return n === 0 ? null : n;
  }

  /** Writes some of `p`; resolves how many bytes went out. */
  write(p: Uint8Array): Promise<number> {
    return FULL_CORE!.write(this.#rid, p);
  }

  /** Closes the socket (throws as `Deno.Conn.close` does when it is closed already). */
  close(): void {
    FULL_CORE!.close(this.#rid);
  }

  /** Half-closes the write side. */
  closeWrite(): Promise<void> {
    return FULL_CORE!.shutdown(this.#rid);
  }

  /** Sets TCP_NODELAY (through libc on the descriptor; throws when that is unavailable or fails). */
  setNoDelay(on = true): void {
    this.#setOption(IPPROTO_TCP, TCP_NODELAY, on, "TCP_NODELAY");
  }

  /** Sets SO_KEEPALIVE (as setNoDelay). */
  setKeepAlive(on = true): void {
    this.#setOption(SOL_SOCKET, SO_KEEPALIVE, on, "SO_KEEPALIVE");
  }

  #setOption(level: number, name: number, on: boolean, what: string): void {
    const why = setSocketInt(this.#fd, level, name, on ? 1 : 0);
    if (why !== "") throw new Error(`${what} cannot be set: ${why}`);
  }

  /** Reads are always referenced: the raw ops the byte path uses have no unref (a listener's sockets keep it alive). */
  ref(): void {}

  /** See `ref`: the connection keeps the event loop alive while a read is pending. */
  unref(): void {}

  /** Stream view of the socket (the byte path uses read()). */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let s = streams.get(this);
    if (s === undefined) streams.set(this, s = {});
    return s.readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (c) => {
        const buf = new Uint8Array(16 * 1024);
        const n = await this.read(buf);
        if (n === null) c.close();
        else c.enqueue(buf.subarray(0, n));
      },
      cancel: () => this.close(),
    });
  }

  /** Stream view of the write side. */
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    let s = streams.get(this);
    if (s === undefined) streams.set(this, s = {});
    return s.writable ??= new WritableStream<Uint8Array<ArrayBufferLike>>({
      write: async (chunk) => {
        let off = 0;
        while (off < chunk.length) off += await this.write(off === 0 ? chunk : chunk.subarray(off));
      },
      close: () => this.closeWrite(),
    });
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * `conn` as a SlimTcpConn when it is a plain accepted TCP socket and the runtime exposes what one needs (its
 * resource id, its descriptor, the ops); otherwise `conn` itself. The caller drops `conn` afterwards.
 */
export function slimTcpConn(conn: Deno.Conn): Deno.Conn {
  const core = FULL_CORE;
  // the runtime's own TcpConn only (not TLS, not a wrapper or a test double)
  if (core === undefined || conn.constructor?.name !== "TcpConn") return conn;
  const fdKey = descriptorSymbol(conn);
  const raw = conn as unknown as Record<symbol, unknown>;
  const rid = raw[core.internalRidSymbol];
  const fd = fdKey === undefined ? undefined : raw[fdKey];
  const remote = conn.remoteAddr;
  const local = conn.localAddr;
  if (
    fdKey === undefined || typeof rid !== "number" || typeof fd !== "number" || remote.transport !== "tcp" ||
    local.transport !== "tcp"
  ) {
    return conn;
  }
  SlimTcpConn.define(core.internalRidSymbol, fdKey);
  return new SlimTcpConn(rid, fd, remote, local) as unknown as Deno.Conn;
}
