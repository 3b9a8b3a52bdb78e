/**
 * Requests in flight (Envoy's SingleServerRequest and FragmentedRequest family). Each downstream request is one
 * `Slot` in its connection's FIFO; replies leave in request order. A single-server request is its own reply
 * handler (no closure per request); a split request has one small child handler per key.
 */
import type { Counter, Histogram } from "../../../../stats/store.ts";
import type { ReplyHandler } from "./pool.ts";
import { integerReply, isOk, OutBuf } from "./resp.ts";

/** Envoy's fixed reply texts (CommandSplitter::Response). */
export const Response = {
  InvalidRequest: "invalid request",
  NoUpstreamHost: "no upstream host",
  UpstreamFailure: "upstream failure",
  UpstreamProtocolError: "upstream protocol error",
  AuthRequired: "NOAUTH Authentication required.",
  UnsupportedProtocol: "NOPROTO unsupported protocol version",
} as const;

/** `redis.<prefix>.command.<cmd>.*`. */
export interface CommandStats {
  readonly total: Counter;
  readonly success: Counter;
  readonly error: Counter;
  readonly latency: Histogram;
  /** Latency unit: 1 for ms, 1000 for latency_in_micros. */
  readonly scale: number;
  /** The time of the current read (performance.now(), taken once per read, not per request). */
  readonly clock: { now: number };
}

/** Where finished requests go: the downstream connection (ordering and output). */
export interface SlotOwner {
  /** The reply of `slot` is bytes [s, e) of `buf` (copied or written out at once). */
  deliver(slot: Slot, buf: Uint8Array, s: number, e: number): void;
}

/** One downstream request awaiting its reply. */
export class Slot {
  /** The encoded reply once ready (only when it could not be written out at once). */
  data: Uint8Array | null = null;
  ready = false;
}

function finish(stats: CommandStats, start: number, ok: boolean): void {
  (ok ? stats.success : stats.error).inc();
  stats.latency.record((stats.clock.now - start) * stats.scale);
}

const scratch = new OutBuf(256);

/** Encodes an error reply into the shared scratch buffer (valid until the next call). */
export function errorBytes(message: string): OutBuf {
  scratch.len = 0;
  scratch.error(message);
  return scratch;
}

/** A command sent whole to one server; its reply is the client's reply. */
export class SingleServerRequest extends Slot implements ReplyHandler {
  constructor(readonly owner: SlotOwner, readonly stats: CommandStats, readonly start: number) {
    super();
  }

  onReply(buf: Uint8Array, s: number, e: number): void {
    finish(this.stats, this.start, true);
    this.owner.deliver(this, buf, s, e);
  }

  onFailure(): void {
    finish(this.stats, this.start, false);
    const o = errorBytes(Response.UpstreamFailure);
    this.owner.deliver(this, o.buf, 0, o.len);
  }
}

/** The split kinds. */
export const Split = { Mget: 0, Mset: 1, Sum: 2 } as const;
/** One of Split. */
export type Split = typeof Split[keyof typeof Split];

const PROTOCOL_ERROR_REPLY = new TextEncoder().encode(`-${Response.UpstreamProtocolError}\r\n`);

/** A multi-key command split into one request per key (MGET, MSET, DEL/EXISTS/TOUCH/UNLINK). */
export class FragmentedRequest extends Slot {
  #remaining: number;
  #errors = 0;
  #total = 0;
  readonly #parts: (Uint8Array | null)[] | null;

  constructor(
    readonly owner: SlotOwner,
    readonly stats: CommandStats,
    readonly start: number,
    readonly kind: Split,
    count: number,
  ) {
    super();
    this.#remaining = count;
    this.#parts = kind === Split.Mget ? new Array(count).fill(null) : null;
  }

  /** A child's handler (one per key). */
  child(index: number): ReplyHandler {
    return new FragmentChild(this, index);
  }

  /** Child `index` answered with bytes [s, e) of `buf`. */
  onChildReply(index: number, buf: Uint8Array, s: number, e: number): void {
    const t = buf[s];
    if (this.kind === Split.Mget) {
      if (t === 36 || t === 95) this.#parts![index] = buf.slice(s, e); // bulk, or RESP3 null
      else if (t === 45 || t === 33) {
        this.#errors++;
        this.#parts![index] = buf.slice(s, e);
      } else {
        this.#errors++;
        this.#parts![index] = PROTOCOL_ERROR_REPLY;
      }
    } else if (this.kind === Split.Mset) {
      if (!isOk(buf, s, e)) this.#errors++;
    } else {
      const v = integerReply(buf, s, e);
      if (Number.isNaN(v)) this.#errors++;
      else this.#total += v;
    }
    if (--this.#remaining === 0) this.#done();
  }

  /** Child `index` failed with `message` (no host, upstream failure). */
  onChildError(index: number, message: string): void {
    if (this.kind === Split.Mget) {
      const o = errorBytes(message);
      this.#parts![index] = o.buf.slice(0, o.len);
    }
    this.#errors++;
    if (--this.#remaining === 0) this.#done();
  }

  #done(): void {
    finish(this.stats, this.start, this.#errors === 0);
    const o = scratch;
    o.len = 0;
    if (this.kind === Split.Mget) {
      const parts = this.#parts!;
      o.header(42, parts.length);
      for (const p of parts) {
        if (p === null) o.ascii("$-1\r\n");
        else o.bytes(p, 0, p.length);
      }
    } else if (this.#errors > 0) {
      o.error(`finished with ${this.#errors} error(s)`);
    } else if (this.kind === Split.Mset) {
      o.simple("OK");
    } else {
      o.integer(this.#total);
    }
    this.owner.deliver(this, o.buf, 0, o.len);
  }
}

class FragmentChild implements ReplyHandler {
  constructor(readonly parent: FragmentedRequest, readonly index: number) {}
  onReply(buf: Uint8Array, s: number, e: number): void {
    this.parent.onChildReply(this.index, buf, s, e);
  }
  onFailure(): void {
    this.parent.onChildError(this.index, Response.UpstreamFailure);
  }
}
