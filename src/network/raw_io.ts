/**
 * Reads and writes on a `Deno.Conn` straight through the runtime's resource ops.
 *
 * `Deno.Conn.read()` wraps each read in an async function that also tracks the pending promise in a Set
 * (for `unref`), so every read costs two promises, a Set insert and delete and a try/finally on top of the
 * op itself; `write()` adds a smaller wrapper. On the proxy's byte path (two reads and two writes per
 * proxied HTTP/1.1 request, one of each per TCP chunk) that wrapper was ~5 % of the main thread's time.
 * These helpers call the same ops (`op_read`/`op_write` on the connection's resource id) directly. When the
 * runtime does not expose them, or `conn` is not a runtime connection (a test double), they fall back to the
 * public methods. Closing the connection still cancels a pending read (it resolves 0 or rejects).
 */

/** The runtime's resource ops nuncio calls directly (Deno's `core`). */
interface CoreIo {
  read(rid: number, buf: Uint8Array): Promise<number>;
  write(rid: number, buf: Uint8Array): Promise<number>;
  close(rid: number): void;
  shutdown(rid: number): Promise<void>;
  internalRidSymbol: symbol;
}

const core: CoreIo | undefined = (() => {
  try {
    const internal = (Deno as unknown as Record<symbol, { core?: CoreIo } | undefined>)[
      (Deno as unknown as { internal: symbol }).internal
    ];
    const c = internal?.core;
    return c && typeof c.read === "function" && typeof c.write === "function" &&
        typeof c.internalRidSymbol === "symbol"
      ? c
      : undefined;
  } catch {
    return undefined;
  }
})();
const RID: symbol | undefined = core?.internalRidSymbol;

/** True when this runtime exposes the ops (else every call takes the public, slower methods). */
export const RAW_IO_AVAILABLE: boolean = core !== undefined;

/** The runtime's ops when all of read, write, close and shutdown are there (network/slim_conn.ts), else undefined. */
export const FULL_CORE: CoreIo | undefined = core !== undefined && typeof core.close === "function" &&
    typeof core.shutdown === "function"
  ? core
  : undefined;

/** The runtime resource id of `conn`, or -1 when it has none we can use. */
function ridOf(conn: Deno.Conn): number {
  if (RID === undefined) return -1;
  const rid = (conn as unknown as Record<symbol, unknown>)[RID];
  return typeof rid === "number" ? rid : -1;
}

/**
 * Reads into `buf` (which must not be empty). Resolves the byte count; 0 or null means end of stream.
 * Rejects as `conn.read` does.
 */
export function connRead(conn: Deno.Conn, buf: Uint8Array): Promise<number | null> {
  const rid = ridOf(conn);
  return rid >= 0 ? core!.read(rid, buf) : conn.read(buf);
}

/** Writes some of `data`; resolves how many bytes were written (like `conn.write`). */
export function connWrite(conn: Deno.Conn, data: Uint8Array): Promise<number> {
  const rid = ridOf(conn);
  return rid >= 0 ? core!.write(rid, data) : conn.write(data);
}

/** Writes all of `data`. */
export async function connWriteAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  const n = data.length;
  let off = await connWrite(conn, data);
  while (off < n) off += await connWrite(conn, data.subarray(off));
}

/**
 * `buf` when it holds `need` bytes, else a buffer of twice its size (doubled until it does) holding its first
 * `len` bytes: the growth step of append-only output buffers.
 */
export function grownTo(buf: Uint8Array, len: number, need: number): Uint8Array {
  if (need <= buf.length) return buf;
  let size = buf.length * 2;
  while (size < need) size *= 2;
  const b = new Uint8Array(size);
  b.set(buf.subarray(0, len));
  return b;
}

/**
 * Room to read more into a buffer whose unparsed bytes are [start, end) and whose end is reached: those bytes
 * moved to the front, or, when they fill it, copied into a buffer twice the size. The caller then has them at
 * [0, end - start).
 */
export function readRoom(buf: Uint8Array<ArrayBuffer>, start: number, end: number): Uint8Array<ArrayBuffer> {
  if (start > 0) {
    buf.copyWithin(0, start, end);
    return buf;
  }
  const bigger = new Uint8Array(buf.length * 2);
  bigger.set(buf);
  return bigger;
}
