/** A pooled (or unpooled, for tcp_proxy) upstream connection and its idle-read bookkeeping. */
import { H1ClientCodec } from "../http/h1/client.ts";
import type { PriorityBreakers } from "./circuit_breaker.ts";
import type { AcquireResult, Host, UpstreamConnection } from "./types.ts";

/** Connection state: owned by a user. */
export const BUSY = 0;
/** Connection state: parked in the pool with a read pending. */
export const IDLE = 1;
/** Connection state: closed. */
export const CLOSED = 2;

/** "ip:port" of `conn`'s local end; "" when the socket is closed. */
export function localAddressOf(conn: Deno.Conn): string {
  try {
    const la = conn.localAddr as Deno.NetAddr;
    return `${la.hostname}:${la.port}`;
  } catch {
    return "";
  }
}

/** What a connection needs from the pool that owns it. */
export interface ConnectionOwner {
  /** Parks a released connection (or closes it when it may not be reused). */
  putIdle(c: PooledConnection): void;
  /** Closes a connection and updates stats; `local` selects destroy_local vs destroy_remote. */
  destroy(c: PooledConnection, local: boolean): void;
}

/** A pooled (or unpooled, for tcp_proxy) upstream connection. */
export class PooledConnection implements UpstreamConnection {
  readonly conn: Deno.Conn;
  readonly host: Host;
  reused = false;
  /** The HTTP/1.1 client codec: the read buffer and the pending idle read. */
  readonly h1: H1ClientCodec;
  lastRxMono = 0;
  /** BUSY, IDLE or CLOSED. */
  state = BUSY;
  /** Requests served (acquires). */
  requests = 0;
  /** The breakers whose connection slot this connection holds (released when it closes). */
  breakers: PriorityBreakers | null = null;
  /** Monotonic ms when it went idle. */
  idleSince = 0;
  /** Monotonic ms when it connected. */
  readonly createdAt: number;
  /** Reusable acquire result (avoids one allocation per reuse). */
  readonly acquired: AcquireResult;
  readonly #pool: ConnectionOwner;
  readonly #tcp: boolean;
  #readInFlight = false;
  #localAddress = "";
  readonly #onRead = (n: number | null) => this.#idleReadDone(n);
  readonly #onReadError = () => this.#idleReadDone(null);

  constructor(pool: ConnectionOwner, conn: Deno.Conn, host: Host, createdAt: number, tcp: boolean) {
    this.#pool = pool;
    this.conn = conn;
    this.host = host;
    this.createdAt = createdAt;
    this.#tcp = tcp;
    this.h1 = new H1ClientCodec(conn);
    this.acquired = { ok: true, connection: this };
  }

  /** "ip:port" of the socket's local end, formatted once ("" when the socket is already closed). */
  get localAddress(): string {
    if (this.#localAddress === "") this.#localAddress = localAddressOf(this.conn);
    return this.#localAddress;
  }

  /** Returns the connection to the pool (`reusable`) or closes it. */
  release(reusable: boolean): void {
    if (this.state !== BUSY) return;
    if (this.#tcp || !reusable) this.#pool.destroy(this, true);
    else this.#pool.putIdle(this);
  }

  /** Starts the idle read that notices a peer close (keeps one already in flight). */
  armIdleRead(): void {
    if (this.#readInFlight) return;
    this.#readInFlight = true;
    const p = this.h1.armIdleRead();
    p.then(this.#onRead, this.#onReadError);
  }

  #idleReadDone(n: number | null): void {
    this.#readInFlight = false;
    if (this.state !== IDLE) return; // a user owns it and takes the pending read over through h1.read()
    // EOF or error: the peer closed; data while idle is a protocol violation: close.
    this.#pool.destroy(this, !!n);
  }
}
