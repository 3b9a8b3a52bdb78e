/** The downstream connection object handed to network filters. */
import type { DownstreamConnection, ReadFilter } from "../network/filter.ts";

function addrString(a: Deno.Addr): { ip: string; full: string } {
  if (a.transport === "tcp" || a.transport === "udp") {
    const ip = a.hostname;
    return { ip, full: ip.includes(":") ? `[${ip}]:${a.port}` : `${ip}:${a.port}` };
  }
  return { ip: "", full: "" };
}

/** A TCP (or TLS) connection accepted by a listener; closes its socket at most once. */
export class ActiveConnection implements DownstreamConnection {
  readonly remoteIp: string;
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly scheme: "http" | "https";
  readonly serverName: string;
  #closed = false;
  /** Non-terminal filters observing bytes. */
  observers: ReadFilter[] = [];
  observed = false;

  constructor(
    readonly id: number,
    readonly conn: Deno.Conn,
    readonly bufferLimitBytes: number,
    opts: { tls?: boolean; serverName?: string } = {},
  ) {
    const r = addrString(conn.remoteAddr);
    const l = addrString(conn.localAddr);
    this.remoteIp = r.ip;
    this.remoteAddress = r.full;
    this.localAddress = l.full;
    this.scheme = opts.tls ? "https" : "http";
    this.serverName = opts.serverName ?? "";
  }

  get closed(): boolean {
    return this.#closed;
  }

  observeRead(data: Uint8Array, endStream: boolean): void {
    for (const f of this.observers) f.onData?.(data, endStream);
  }

  observeWrite(data: Uint8Array, endStream: boolean): void {
    for (const f of this.observers) f.onWrite?.(data, endStream);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the peer side of a failed op
    }
  }
}
