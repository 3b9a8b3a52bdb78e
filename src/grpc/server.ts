/**
 * A gRPC server for unary and bidirectional streaming methods (stream_call.ts) on the project's HTTP/2 codec (h2c, prior knowledge): one
 * H2ServerConnection per accepted connection, methods registered by path, grpc-timeout deadlines on a timer
 * wheel, trailers-only error replies, content-type and grpc-encoding checks, bounded request messages and a
 * graceful shutdown (GOAWAY, then close when calls finish or the grace period ends).
 */
import { TimerWheel } from "../common/timer_wheel.ts";
import type { H2Options } from "../http/h2/options.ts";
import { H2ServerConnection } from "../http/h2/server.ts";
import { DEFAULT_MAX_MESSAGE } from "./frame.ts";
import { Dispatcher, type GrpcUnaryHandler } from "./server_call.ts";
import type { GrpcStreamHandler } from "./stream_call.ts";

export { type GrpcUnaryHandler, parseGrpcTimeout } from "./server_call.ts";
export { GrpcStreamCall, type GrpcStreamHandler } from "./stream_call.ts";
export { GrpcError } from "./client.ts";

/** Options of a GrpcServer. */
export interface GrpcServerOptions {
  /** Largest request message accepted (default 4 MiB); larger ones fail with RESOURCE_EXHAUSTED. */
  maxMessageBytes?: number;
  /** HTTP/2 options of every connection (default: max_concurrent_streams 1024). */
  h2?: H2Options;
  /** Timer wheel for deadlines (default: the server's own). */
  timers?: TimerWheel;
}

/** Where to listen. */
export interface GrpcListenOptions {
  /** Address to bind (default 127.0.0.1). */
  hostname?: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Share the port with other processes or workers (SO_REUSEPORT). */
  reusePort?: boolean;
}

/** A gRPC server; register methods, then `listen` (or hand it accepted connections with `serveConnection`). */
export class GrpcServer {
  readonly #dispatch: Dispatcher;
  readonly #conns = new Set<H2ServerConnection>();
  readonly #h2: H2Options;
  readonly #ownTimers: boolean;
  #listener: Deno.Listener | null = null;
  #accepting: Promise<void> | null = null;
  #shutdown: Promise<void> | null = null;

  /** A server without methods or listener. */
  constructor(opts: GrpcServerOptions = {}) {
    this.#h2 = { max_concurrent_streams: 1024, ...opts.h2 };
    this.#ownTimers = opts.timers === undefined;
    this.#dispatch = new Dispatcher(
      opts.timers ?? new TimerWheel(),
      opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE,
    );
  }

  /** Registers a unary method under its full path (`/package.Service/Method`); returns this. */
  register(path: string, handler: GrpcUnaryHandler): this {
    this.#dispatch.methods.set(path, handler);
    return this;
  }

  /** Binds and starts accepting; returns the bound address. Throws when the address is taken. */
  listen(opts: GrpcListenOptions): Deno.NetAddr {
    if (this.#listener !== null) throw new Error("gRPC server is already listening");
    if (this.#shutdown !== null) throw new Error("gRPC server is shut down");
    const l = Deno.listen({
      hostname: opts.hostname ?? "127.0.0.1",
      port: opts.port,
      reusePort: opts.reusePort,
    });
    this.#listener = l;
    this.#accepting = this.#accept(l);
    return l.addr as Deno.NetAddr;
  }

  /** Registers a bidirectional streaming method under its full path; returns this. */
  registerStream(path: string, handler: GrpcStreamHandler): this {
    this.#dispatch.streams.set(path, handler);
    return this;
  }

  /** The listening address, or null. */
  get addr(): Deno.NetAddr | null {
    return this.#listener === null ? null : this.#listener.addr as Deno.NetAddr;
  }

  /** Open connections. */
  get connections(): number {
    return this.#conns.size;
  }

  async #accept(l: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch {
        return; // listener closed
      }
      this.serveConnection(conn);
    }
  }

  /** Serves gRPC on an accepted connection (HTTP/2 with prior knowledge); returns its codec connection. */
  serveConnection(conn: Deno.Conn): H2ServerConnection | null {
    if (this.#shutdown !== null) {
      conn.close();
      return null;
    }
    if (conn.remoteAddr.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
    const h2 = new H2ServerConnection(conn, this.#dispatch, this.#h2);
    this.#conns.add(h2);
    h2.start().finally(() => this.#conns.delete(h2));
    return h2;
  }

  /**
   * Stops accepting, sends GOAWAY on every connection and waits up to `graceMs` for calls in flight to
   * finish, then closes what is left. Resolves when everything is closed.
   */
  shutdown(graceMs = 5000): Promise<void> {
    return this.#shutdown ??= this.#stop(graceMs);
  }

  /** Closes at once (calls in flight are reset). */
  close(): Promise<void> {
    return this.shutdown(0);
  }

  async #stop(graceMs: number): Promise<void> {
    this.#listener?.close();
    await this.#accepting;
    const conns = [...this.#conns];
    if (graceMs > 0 && conns.length > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(conns.map((c) => c.shutdown())),
        new Promise<void>((r) => timer = setTimeout(r, graceMs)),
      ]);
      clearTimeout(timer);
    }
    for (const c of this.#conns) c.close();
    await Promise.all(conns.map((c) => c.closed));
    if (this.#ownTimers) this.#dispatch.timers.close();
  }

  /** Disposes with `shutdown()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
