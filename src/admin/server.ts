/** Serves the admin Hono app on its own port with Deno.serve. */
import type { Hono } from "hono";

/** A running admin server. */
export interface AdminServer {
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting, finishes in-flight requests and resolves when the server is gone. */
  close(): Promise<void>;
}

/** Starts serving `app` on hostname:port (binding errors throw synchronously). */
export function startAdminServer(app: Hono, opts: { hostname: string; port: number }): AdminServer {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: opts.hostname, port: opts.port, signal: ac.signal, onListen() {} },
    app.fetch,
  );
  let closing: Promise<void> | undefined;
  return {
    port: server.addr.port,
    close() {
      if (!closing) {
        ac.abort();
        closing = server.finished;
      }
      return closing;
    },
  };
}
