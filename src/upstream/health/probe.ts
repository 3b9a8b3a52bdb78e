/**
 * The I/O side of an active health check: a Probe sends one check to one host and reports its outcome to
 * the session. HTTP and TCP implement it; a gRPC probe is one more implementation of the same interface.
 */
import type { HostImpl } from "../host.ts";

/** Outcome of one check. */
export const ProbeOutcome = {
  SUCCESS: 0,
  /** Expected status but `x-envoy-degraded` present. */
  DEGRADED: 1,
  /** A definite failure (bad status): the host is marked unhealthy at once. */
  ACTIVE_FAILURE: 2,
  /** A retriable status: counts toward unhealthy_threshold. */
  RETRIABLE_FAILURE: 3,
  /** Connect failure, reset, protocol error: counts toward unhealthy_threshold. */
  NETWORK_FAILURE: 4,
  /** The upstream answered with `x-envoy-immediate-health-check-fail`. */
  IMMEDIATE_FAILURE: 5,
} as const;
/** One of ProbeOutcome. */
export type ProbeOutcome = typeof ProbeOutcome[keyof typeof ProbeOutcome];

/** Receives probe outcomes (the session). */
export interface ProbeSink {
  /** Called once per `start`, unless `cancel` came first. */
  onProbeResult(outcome: ProbeOutcome): void;
}

/** One host's checker connection. */
export interface Probe {
  /** Sends one check; the outcome arrives through the sink. */
  start(): void;
  /** Abandons the check in flight (timeout): its outcome is dropped and its connection closed. */
  cancel(): void;
  /** Closes everything (host removed, shutdown). */
  close(): void;
}

/** Builds one probe per host for a checker kind. */
export interface ProbeFactory {
  /** "HTTP", "TCP" (Envoy's health_checker_type for event logs). */
  readonly type: string;
  /** Makes the probe of `host` reporting to `sink`. */
  create(host: HostImpl, sink: ProbeSink): Probe;
}

/** Opens a probe's connection to a host (the cluster's transport: TLS clusters are checked over TLS). */
export type ProbeConnect = (host: HostImpl) => Promise<Deno.Conn>;

/** Deno.connect to the host's address (clusters without a transport socket). */
export const plainConnect: ProbeConnect = (h) => Deno.connect({ hostname: h.address, port: h.port });

/**
 * A probe that keeps one connection per host: connects when it has none, runs `exchange` on it, and retries
 * once on a fresh connection when a kept one failed (the upstream closed it while idle). Subclasses say what
 * one check sends and expects.
 */
export abstract class ConnProbe implements Probe {
  protected readonly host: HostImpl;
  readonly #sink: ProbeSink;
  readonly #connect: ProbeConnect;
  #conn: Deno.Conn | null = null;
  #gen = 0;

  /** A probe of `host` reporting to `sink`, opening connections with `connect`. */
  constructor(host: HostImpl, sink: ProbeSink, connect: ProbeConnect = plainConnect) {
    this.host = host;
    this.#sink = sink;
    this.#connect = connect;
  }

  /** One check on `conn`; throws on network errors; calls `drop()` when the connection must not be kept. */
  protected abstract exchange(conn: Deno.Conn): Promise<ProbeOutcome>;

  /** Whether `outcome` on a reused connection is worth one retry on a fresh one. */
  protected abstract retryAfterReuse(outcome: ProbeOutcome): boolean;

  start(): void {
    const gen = ++this.#gen;
    this.#run(gen).then((outcome) => {
      if (gen === this.#gen) this.#sink.onProbeResult(outcome);
    });
  }

  async #run(gen: number): Promise<ProbeOutcome> {
    const reused = this.#conn !== null;
    const outcome = await this.#attempt(gen);
    if (reused && gen === this.#gen && this.retryAfterReuse(outcome)) return this.#attempt(gen);
    return outcome;
  }

  async #attempt(gen: number): Promise<ProbeOutcome> {
    try {
      if (this.#conn === null) {
        const conn = await this.#connect(this.host);
        if (gen !== this.#gen) {
          closeQuietly(conn);
          return ProbeOutcome.NETWORK_FAILURE;
        }
        this.#conn = conn;
      }
      return await this.exchange(this.#conn);
    } catch {
      if (gen === this.#gen) this.drop();
      return ProbeOutcome.NETWORK_FAILURE;
    }
  }

  /** Closes the kept connection (the next check connects anew). */
  protected drop(): void {
    closeQuietly(this.#conn);
    this.#conn = null;
  }

  cancel(): void {
    this.#gen++;
    this.drop();
  }

  close(): void {
    this.cancel();
  }
}

/** Reads into `buf` from `conn`; returns bytes read or null at EOF. */
export function readSome(conn: Deno.Conn, buf: Uint8Array): Promise<number | null> {
  return conn.read(buf);
}

/** Writes all of `data`. */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Closes a connection, ignoring "already closed". */
export function closeQuietly(conn: Deno.Conn | null): void {
  if (conn === null) return;
  try {
    conn.close();
  } catch {
    // already closed
  }
}
