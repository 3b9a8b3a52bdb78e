/** Redis addressing and connection helpers: URL parsing, the transport error type, a bounded connect. */

/** A transport-level failure (not connected, timeout, connection lost). */
export class RedisError extends Error {
  /** Wraps `message`. */
  constructor(message: string) {
    super(message);
    this.name = "RedisError";
  }
}

/** Where and how to connect, from `redis://[user:password@]host[:port][/db]`. */
export interface RedisAddress {
  hostname: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
}

/** Parses a redis:// URL (or bare `host:port`); throws on anything else. */
export function parseRedisUrl(url: string): RedisAddress {
  const u = new URL(url.includes("://") ? url : `redis://${url}`);
  if (u.protocol !== "redis:") {
    throw new Error(`Unsupported Redis URL scheme "${u.protocol}" (want redis://)`);
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  if (db !== undefined && !(Number.isInteger(db) && db >= 0)) {
    throw new Error(`Bad Redis database "${u.pathname}"`);
  }
  return {
    hostname: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
  };
}

/** Deno.connect bounded by `ms`; a late connection is closed. */
export async function connectWithTimeout(hostname: string, port: number, ms: number): Promise<Deno.TcpConn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = Deno.connect({ hostname, port });
  try {
    return await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } catch (e) {
    connecting.then((c) => c.close(), () => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
