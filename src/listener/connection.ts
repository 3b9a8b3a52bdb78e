/** The downstream connection object handed to network filters. */
import type { DownstreamTlsInfo } from "../common/tls_info.ts";
import type { StreamInfo } from "../common/stream_info.ts";
import type { DownstreamConnection, ReadFilter, TerminalFilter } from "../network/filter.ts";
import { isLocalRestored } from "../transport/prefixed_conn.ts";

function addrString(a: Deno.Addr): { ip: string; full: string } {
  if (a.transport === "tcp" || a.transport === "udp") {
    const ip = a.hostname;
    return { ip, full: ip.includes(":") ? `[${ip}]:${a.port}` : `${ip}:${a.port}` };
  }
  return { ip: "", full: "" };
}

/** The last local address seen: a listener's connections share one string for it (one less per connection). */
let lastLocal: { host: string; port: number; full: string } = { host: "", port: -1, full: "" };

function localString(a: Deno.Addr): string {
  if (
    (a.transport === "tcp" || a.transport === "udp") && a.port === lastLocal.port &&
    a.hostname === lastLocal.host
  ) {
    return lastLocal.full;
  }
  const full = addrString(a).full;
  if (a.transport === "tcp" || a.transport === "udp") lastLocal = { host: a.hostname, port: a.port, full };
  return full;
}

/** The shared, never modified empty observer list (a connection without read filters holds no array of its own). */
export const NO_OBSERVERS: ReadFilter[] = [];

/** How a connection arrived (set by the listener after TLS termination). */
export interface ConnectionOptions {
  /** The TLS session when TLS was terminated. */
  tls?: DownstreamTlsInfo;
  /** The socket whose addresses are reported (the client's TCP socket when TLS ran over a loopback splice). */
  addressesOf?: { readonly remoteAddr: Deno.Addr; readonly localAddr: Deno.Addr };
  /** Why the filter chain was chosen (debug logs only). */
  chainReason?: string;
}

/** A TCP (or TLS) connection accepted by a listener; closes its socket at most once. */
export class ActiveConnection implements DownstreamConnection {
  readonly remoteIp: string;
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly localAddressRestored: boolean;
  readonly scheme: "http" | "https";
  readonly serverName: string;
  readonly tls: DownstreamTlsInfo | undefined;
  #closed = false;
  /** Non-terminal filters observing bytes. */
  observers: ReadFilter[] = NO_OBSERVERS;
  /** The connection's terminal filter once created (told when the listener drains). */
  terminal: TerminalFilter | null = null;
  observed = false;
  streamInfo: StreamInfo | null = null;
  /** The listener's: all read filters of the chain (told onClose), when the terminal runs with `start`. */
  endObservers: ReadFilter[] = NO_OBSERVERS;
  /** The listener's: when the connection was accepted (monotonic ms), when the terminal runs with `start`. */
  startedAt = 0;

  constructor(
    readonly id: number,
    readonly conn: Deno.Conn,
    readonly bufferLimitBytes: number,
    opts: ConnectionOptions = {},
  ) {
    const a = opts.addressesOf ?? conn;
    const r = addrString(a.remoteAddr);
    this.remoteIp = r.ip;
    this.remoteAddress = r.full;
    this.localAddress = localString(a.localAddr);
    this.localAddressRestored = isLocalRestored(a);
    this.scheme = opts.tls ? "https" : "http";
    this.serverName = opts.tls?.sni ?? "";
    this.tls = opts.tls;
  }

  get closed(): boolean {
    return this.#closed;
  }

  observeRead(data: Uint8Array, endStream: boolean): Promise<void> | undefined {
    let hold: Promise<void> | undefined;
    for (const f of this.observers) {
      const h = f.onData?.(data, endStream);
      if (h !== undefined) hold = hold === undefined ? h : Promise.all([hold, h]).then(() => {});
    }
    return hold;
  }

  observeWrite(data: Uint8Array, endStream: boolean): void {
    for (const f of this.observers) f.onWrite?.(data, endStream);
  }

  /** The listener drains: the terminal filter winds the connection down gracefully (see TerminalFilter.drain). */
  drain(keepIdle = false): void {
    if (this.#closed) return;
    try {
      this.terminal?.drain?.(keepIdle);
      for (const f of this.observers) f.onDrain?.(keepIdle);
    } catch {
      // a filter failing to drain is closed with the rest when the grace period ends
    }
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
