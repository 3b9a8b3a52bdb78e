/**
 * Opening one upstream connection with the cluster's connect_timeout: shared by the HTTP/1.1 pool and the
 * HTTP/2 connections. The outcome goes to the caller's sink synchronously, in the callback that settles the
 * connect, so a pool that closes in between never misses a socket.
 */
import type { Clock } from "../common/clock.ts";
import type { ConnectFn } from "./pool.ts";
import type { Host } from "./types.ts";

/** Receives the outcome of `connectWithTimeout`: exactly one of `connected` and `failed` runs. */
export interface ConnectSink {
  /** True when the connection is no longer wanted (pool closed, request gone); the socket is then closed. */
  stale(): boolean;
  /** The socket (TCP_NODELAY set) and how long connecting took. */
  connected(conn: Deno.Conn, connectMs: number): void;
  /** Connect failed, timed out, or the result came back stale. */
  failed(reason: "connect_failure" | "connect_timeout", detail: string): void;
}

/** Connects to `host` with `connect`, aborting after `timeoutMs`; reports to `sink`. Called per new connection. */
export function connectWithTimeout(
  connect: ConnectFn,
  host: Host,
  clock: Clock,
  timeoutMs: number,
  sink: ConnectSink,
): void {
  const start = clock.monotonic();
  const abort = new AbortController();
  let done = false;
  const timer = clock.setTimer(() => {
    if (done) return;
    done = true;
    abort.abort();
    sink.failed("connect_timeout", `Connect timeout after ${timeoutMs}ms`);
  }, timeoutMs);
  let p: Promise<Deno.Conn>;
  try {
    p = connect({ hostname: host.address, port: host.port, signal: abort.signal });
  } catch (e) {
    p = Promise.reject(e);
  }
  p.then((conn) => {
    if (done || sink.stale()) {
      // timed out or not wanted meanwhile: do not leak the socket
      try {
        conn.close();
      } catch {
        // already closed
      }
      if (!done) {
        done = true;
        clock.clearTimer(timer);
        sink.failed("connect_failure", "Cluster manager closed");
      }
      return;
    }
    done = true;
    clock.clearTimer(timer);
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // not a TCP socket (tests) or already closed
    }
    sink.connected(conn, clock.monotonic() - start);
  }, (e: unknown) => {
    if (done) return;
    done = true;
    clock.clearTimer(timer);
    sink.failed("connect_failure", e instanceof Error ? e.message : String(e));
  });
}
