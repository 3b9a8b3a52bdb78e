/**
 * The embedded rate-limit services of this isolate, by the gRPC address they bound: the rate-limit filters'
 * client asks it for the host its cluster picked and, when that host is a service running on this very event
 * loop (the embedded service with `--concurrency 1`), calls `shouldRateLimit` directly instead of over
 * HTTP/2 on a loopback socket. Workers have their own module state, so they never find the main thread's
 * service here and keep using gRPC. Kept free of imports so the filters load nothing heavy through it.
 */
import type { RateLimitRequest, RateLimitResponse } from "./types.ts";

/** What a caller in the same isolate uses of the service (RateLimitService implements it). */
export interface LocalRateLimitService {
  /** Decides; sync with memory counters, a promise with Redis; throws RateLimitServiceError (its grpcStatus). */
  shouldRateLimit(req: RateLimitRequest): RateLimitResponse | Promise<RateLimitResponse>;
}

interface Bound {
  hostname: string;
  service: LocalRateLimitService;
}

const byPort = new Map<number, Bound[]>();

/** Runs when an embedded service binds its gRPC port; returns the function that removes it again (close). */
export function registerLocalRateLimitService(
  hostname: string,
  port: number,
  service: LocalRateLimitService,
): () => void {
  const b: Bound = { hostname, service };
  let list = byPort.get(port);
  if (list === undefined) byPort.set(port, list = []);
  list.push(b);
  return () => {
    const l = byPort.get(port);
    if (l === undefined) return;
    const i = l.indexOf(b);
    if (i >= 0) l.splice(i, 1);
    if (l.length === 0) byPort.delete(port);
  };
}

const WILDCARD = new Set(["0.0.0.0", "::", "[::]"]);
const LOOPBACK = new Set(["127.0.0.1", "::1", "[::1]", "localhost"]);

/**
 * Per call: the service of this isolate listening on `address:port` (exactly, or on a wildcard address when
 * `address` is a loopback one), or null. A map lookup by port; nothing allocated.
 */
export function localRateLimitService(address: string, port: number): LocalRateLimitService | null {
  const list = byPort.get(port);
  if (list === undefined) return null;
  for (let i = 0; i < list.length; i++) {
    const h = list[i].hostname;
    if (h === address || (WILDCARD.has(h) && LOOPBACK.has(address))) return list[i].service;
  }
  return null;
}
