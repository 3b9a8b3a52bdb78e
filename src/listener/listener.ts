/**
 * A listener: binds one address (reusePort so workers and a new process can share it), accepts
 * connections and runs each through its network filter chain.
 */
import type { Clock } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type { NetworkFilterFactory, ReadFilter, TerminalFilter } from "../network/filter.ts";
import { FilterStatus } from "../network/filter.ts";
import type { Counter, Gauge, Histogram, Scope } from "../stats/store.ts";
import { ActiveConnection } from "./connection.ts";

const log = new Logger("listener");

/** Everything a listener needs, built by the snapshot builder from the parsed config. */
export interface ListenerSpec {
  /** Listener name. */
  name: string;
  /** Bind address. */
  hostname: string;
  /** Bind port (0 picks a free one; see `port` after start). */
  port: number;
  /** Network filter factories in chain order; the last is terminal. */
  filters: NetworkFilterFactory[];
  /** per_connection_buffer_limit_bytes. */
  bufferLimitBytes: number;
  /** Stats scope `listener.<address>.`. */
  scope: Scope;
}

interface ListenerStats {
  downstream_cx_total: Counter;
  downstream_cx_active: Gauge;
  downstream_cx_destroy: Counter;
  downstream_cx_length_ms: Histogram;
  downstream_cx_overflow: Counter;
}

/** A bound listener with its accept loop. */
export class Listener {
  #listener: Deno.Listener | undefined;
  #connections = new Set<ActiveConnection>();
  #nextId = 1;
  #accepting: Promise<void> | undefined;
  #stats: ListenerStats;
  #draining = false;
  #idle: (() => void) | undefined;

  constructor(readonly spec: ListenerSpec, readonly clock: Clock, readonly idBase = 0) {
    const s = spec.scope;
    this.#stats = {
      downstream_cx_total: s.counter("downstream_cx_total"),
      downstream_cx_active: s.gauge("downstream_cx_active"),
      downstream_cx_destroy: s.counter("downstream_cx_destroy"),
      downstream_cx_length_ms: s.histogram("downstream_cx_length_ms"),
      downstream_cx_overflow: s.counter("downstream_cx_overflow"),
    };
  }

  /** The bound port (after `start`). */
  get port(): number {
    return (this.#listener?.addr as Deno.NetAddr | undefined)?.port ?? this.spec.port;
  }

  /** Number of open downstream connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Binds the socket and starts accepting; throws when the address cannot be bound. */
  start(reusePort: boolean): void {
    this.#listener = Deno.listen({ hostname: this.spec.hostname, port: this.spec.port, reusePort });
    this.#accepting = this.#acceptLoop(this.#listener);
  }

  async #acceptLoop(l: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) return;
        // EMFILE and friends: back off briefly instead of spinning
        log.warn(`Accept failed on ${this.spec.name}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      this.#handle(conn);
    }
  }

  #handle(conn: Deno.Conn): void {
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // the peer may already be gone
    }
    const c = new ActiveConnection(this.idBase + this.#nextId++, conn, this.spec.bufferLimitBytes);
    this.#connections.add(c);
    this.#stats.downstream_cx_total.inc();
    this.#stats.downstream_cx_active.inc();
    this.#run(c, this.clock.monotonic());
  }

  async #run(c: ActiveConnection, start: number): Promise<void> {
    const observers: ReadFilter[] = [];
    try {
      const filters = this.spec.filters;
      let terminal: TerminalFilter | undefined;
      let stopped = false;
      for (let i = 0; i < filters.length; i++) {
        const f = filters[i].createFilter(c);
        if (filters[i].terminal) {
          terminal = f as TerminalFilter;
          break;
        }
        const rf = f as ReadFilter;
        observers.push(rf);
        if (rf.onNewConnection) {
          const st = await rf.onNewConnection(c);
          if (st === FilterStatus.StopIteration) {
            stopped = true;
            break;
          }
        }
      }
      if (observers.some((o) => o.onData || o.onWrite)) {
        c.observers = observers;
        c.observed = true;
      }
      if (!stopped && terminal && !c.closed) await terminal.run(c);
    } catch (err) {
      log.error(`Connection ${c.id} on ${this.spec.name} failed: ${(err as Error).stack ?? err}`);
    } finally {
      c.close();
      for (const o of observers) {
        try {
          o.onClose?.();
        } catch (err) {
          log.error(`onClose failed: ${(err as Error).message}`);
        }
      }
      this.#connections.delete(c);
      this.#stats.downstream_cx_active.dec();
      this.#stats.downstream_cx_destroy.inc();
      this.#stats.downstream_cx_length_ms.record(this.clock.monotonic() - start);
      if (this.#draining && this.#connections.size === 0) this.#idle?.();
    }
  }

  /** Stops accepting new connections (existing ones go on). */
  stopAccepting(): void {
    if (!this.#listener) return;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    this.#listener = undefined;
  }

  /** Stops accepting and waits up to `graceMs` for open connections to finish, then closes the rest. */
  async drainAndClose(graceMs: number): Promise<void> {
    this.stopAccepting();
    await this.#accepting;
    if (this.#connections.size > 0 && graceMs > 0) {
      this.#draining = true;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
    }
    for (const c of this.#connections) c.close();
    // let the per-connection tasks observe the close
    for (let i = 0; i < 100 && this.#connections.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
  }
}
