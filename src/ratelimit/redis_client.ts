/**
 * A small RESP2 Redis client on Deno.connect: one connection, pipelined commands (every batch queued in one
 * tick goes out in one write), a command timeout that drops the connection, and reconnection with
 * exponential back-off. While disconnected, commands fail at once so callers can apply a failure mode.
 */
import { connectWithTimeout, parseRedisUrl, type RedisAddress, RedisError } from "./redis_address.ts";
import { readRoom } from "../network/raw_io.ts";
import {
  encodeCommands,
  INCOMPLETE,
  parseReply,
  RedisReplyError,
  type RespArg,
  type RespValue,
} from "./resp.ts";

export { parseRedisUrl, type RedisAddress, RedisError } from "./redis_address.ts";

/** Options of RedisClient. */
export interface RedisClientOptions {
  /** A reply slower than this drops the connection (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Connect attempt limit (default 1000 ms). */
  connectTimeoutMs?: number;
  /** First reconnect delay (default 50 ms), doubled per failure up to `backoffMaxMs` (default 2000 ms). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Called when the client becomes usable (true) or stops being usable (false), with a reason. */
  onStateChange?: (up: boolean, reason: string) => void;
}

interface Pending {
  count: number;
  replies: RespValue[];
  resolve: (v: RespValue[]) => void;
  reject: (e: Error) => void;
  deadline: number;
}

/** One pipelined connection to Redis that keeps reconnecting until closed. */
export class RedisClient {
  readonly address: RedisAddress;
  readonly #timeout: number;
  readonly #connectTimeout: number;
  readonly #backoffBase: number;
  readonly #backoffMax: number;
  readonly #onState?: (up: boolean, reason: string) => void;
  #conn: Deno.TcpConn | null = null;
  #up = false;
  #everReported = false;
  #closed = false;
  #pending: Pending[] = [];
  #head = 0;
  #out: Uint8Array[] = [];
  #writing = false;
  #checkTimer: ReturnType<typeof setInterval> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #connecting: Promise<void> | undefined;
  #readLoop: Promise<void> | undefined;
  #waiters: (() => void)[] = [];
  readonly #flushBound = () => void this.#flush();
  readonly #checkBound = () => this.#checkTimeouts();
  readonly #connectBound = () => {
    this.#reconnectTimer = undefined;
    this.#connecting = this.#connect();
  };

  /** A client for `url`; call `start()` to connect. */
  constructor(url: string, opts: RedisClientOptions = {}) {
    this.address = parseRedisUrl(url);
    this.#timeout = opts.commandTimeoutMs ?? 1000;
    this.#connectTimeout = opts.connectTimeoutMs ?? 1000;
    this.#backoffBase = opts.backoffBaseMs ?? 50;
    this.#backoffMax = opts.backoffMaxMs ?? 2000;
    this.#onState = opts.onStateChange;
  }

  /** True while connected (and authenticated). */
  get connected(): boolean {
    return this.#up;
  }

  /** Starts connecting in the background (and reconnecting after every loss). */
  start(): void {
    if (this.#closed || this.#connecting || this.#conn) return;
    this.#connecting = this.#connect();
  }

  /** Resolves true once connected, false after `timeoutMs`. */
  ready(timeoutMs = 2000): Promise<boolean> {
    if (this.#up) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(t);
        resolve(true);
      };
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Sends one command; error replies resolve as RedisReplyError values. */
  async command(args: readonly RespArg[]): Promise<RespValue> {
    return (await this.pipeline([args]))[0];
  }

  /** Sends commands in one write; resolves with one reply per command, or rejects with RedisError. */
  pipeline(cmds: readonly (readonly RespArg[])[]): Promise<RespValue[]> {
    if (!this.#up) return Promise.reject(new RedisError("Redis not connected"));
    return this.#send(cmds);
  }

  /** Stops reconnecting, fails what is pending and closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    await this.#connecting?.catch(() => {});
    if (this.#conn) this.#drop(this.#conn, new RedisError("Redis client closed"));
    await this.#readLoop;
    for (const w of this.#waiters.splice(0)) w();
  }

  #send(cmds: readonly (readonly RespArg[])[]): Promise<RespValue[]> {
    const { promise, resolve, reject } = Promise.withResolvers<RespValue[]>();
    this.#pending.push({
      count: cmds.length,
      replies: [],
      resolve,
      reject,
      deadline: performance.now() + this.#timeout,
    });
    this.#out.push(encodeCommands(cmds));
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(this.#flushBound);
    }
    if (this.#checkTimer === undefined) {
      this.#checkTimer = setInterval(this.#checkBound, Math.max(5, Math.min(100, this.#timeout / 4)));
    }
    return promise;
  }

  async #flush(): Promise<void> {
    const conn = this.#conn;
    try {
      while (this.#out.length > 0 && conn !== null && conn === this.#conn) {
        const chunks = this.#out;
        this.#out = [];
        let buf = chunks[0];
        if (chunks.length > 1) {
          let n = 0;
          for (const c of chunks) n += c.length;
          buf = new Uint8Array(n);
          n = 0;
          for (const c of chunks) {
            buf.set(c, n);
            n += c.length;
          }
        }
        for (let off = 0; off < buf.length;) off += await conn.write(buf.subarray(off));
      }
    } catch (e) {
      if (conn) this.#drop(conn, new RedisError(`Redis write failed: ${(e as Error).message}`));
    } finally {
      this.#writing = false;
    }
  }

  async #read(conn: Deno.TcpConn): Promise<void> {
    let buf = new Uint8Array(16 * 1024);
    let start = 0;
    let end = 0;
    try {
      for (;;) {
        if (end === buf.length) {
          buf = readRoom(buf, start, end);
          end -= start;
          start = 0;
        }
        const n = await conn.read(buf.subarray(end));
        if (n === null) {
          this.#drop(conn, new RedisError("Redis closed the connection"));
          return;
        }
        end += n;
        for (;;) {
          const r = parseReply(buf, start, end);
          if (r === INCOMPLETE) break;
          start = r.next;
          if (!this.#deliver(r.value)) {
            this.#drop(conn, new RedisError("Unexpected reply from Redis"));
            return;
          }
        }
        if (start === end) start = end = 0;
      }
    } catch (e) {
      this.#drop(conn, new RedisError(`Redis connection lost: ${(e as Error).message}`));
    }
  }

  #deliver(v: RespValue): boolean {
    const p = this.#pending[this.#head];
    if (p === undefined) return false;
    p.replies.push(v);
    if (p.replies.length === p.count) {
      this.#head++;
      if (this.#head === this.#pending.length) {
        this.#pending.length = 0;
        this.#head = 0;
      } else if (this.#head > 1024) {
        this.#pending = this.#pending.slice(this.#head);
        this.#head = 0;
      }
      p.resolve(p.replies);
    }
    return true;
  }

  #checkTimeouts(): void {
    const p = this.#pending[this.#head];
    if (p === undefined) {
      clearInterval(this.#checkTimer);
      this.#checkTimer = undefined;
      return;
    }
    if (performance.now() > p.deadline && this.#conn) {
      this.#drop(this.#conn, new RedisError(`Redis command timed out after ${this.#timeout} ms`));
    }
  }

  /** Forgets `conn` (if still current), fails pending commands and schedules a reconnect. */
  #drop(conn: Deno.TcpConn, err: RedisError): void {
    if (conn !== this.#conn) return;
    this.#conn = null;
    try {
      conn.close();
    } catch {
      // already closed
    }
    const pending = this.#pending;
    const head = this.#head;
    this.#pending = [];
    this.#head = 0;
    this.#out = [];
    if (this.#checkTimer !== undefined) clearInterval(this.#checkTimer);
    this.#checkTimer = undefined;
    for (let i = head; i < pending.length; i++) pending[i].reject(err);
    this.#setState(false, err.message);
    this.#scheduleReconnect();
  }

  #setState(up: boolean, reason: string): void {
    const changed = this.#up !== up || !this.#everReported;
    this.#up = up;
    if (!changed || this.#closed) return;
    this.#everReported = true;
    this.#onState?.(up, reason);
    if (up) { for (const w of this.#waiters.splice(0)) w(); }
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== undefined) return;
    const exp = Math.min(this.#backoffMax, this.#backoffBase * 2 ** Math.min(this.#attempt, 20));
    this.#attempt++;
    this.#reconnectTimer = setTimeout(this.#connectBound, exp * (0.5 + Math.random() * 0.5));
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const { hostname, port, username, password, db } = this.address;
    let conn: Deno.TcpConn;
    try {
      conn = await connectWithTimeout(hostname, port, this.#connectTimeout);
    } catch (e) {
      this.#setState(false, `Redis connect to ${hostname}:${port} failed: ${(e as Error).message}`);
      this.#scheduleReconnect();
      return;
    }
    if (this.#closed) {
      conn.close();
      return;
    }
    conn.setNoDelay(true);
    this.#conn = conn;
    this.#readLoop = this.#read(conn);
    const setup: RespArg[][] = [];
    if (password !== undefined) setup.push(username ? ["AUTH", username, password] : ["AUTH", password]);
    if (db !== undefined && db !== 0) setup.push(["SELECT", db]);
    if (setup.length > 0) {
      try {
        const replies = await this.#send(setup);
        const bad = replies.find((r) => r instanceof RedisReplyError);
        if (bad) {
          this.#drop(conn, new RedisError(`Redis setup failed: ${(bad as Error).message}`));
          return;
        }
      } catch {
        return; // dropped already, reconnect scheduled
      }
    }
    this.#attempt = 0;
    this.#setState(true, `connected to ${hostname}:${port}`);
  }
}
