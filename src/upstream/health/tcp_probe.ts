/** TCP health check: connect, optionally send a payload, pass when every `receive` block arrived in order. */
import type { HostImpl } from "../host.ts";
import {
  ConnProbe,
  type Probe,
  type ProbeConnect,
  type ProbeFactory,
  ProbeOutcome,
  type ProbeSink,
  writeAll,
} from "./probe.ts";

const MAX_BUFFER = 64 * 1024;

/** True when each of `blocks` occurs in `data[0, len)` in order (Envoy's fuzzy TCP match). */
export function payloadMatches(blocks: readonly Uint8Array[], data: Uint8Array, len: number): boolean {
  let from = 0;
  for (const b of blocks) {
    const at = indexOf(data, len, b, from);
    if (at < 0) return false;
    from = at + b.length;
  }
  return true;
}

function indexOf(data: Uint8Array, len: number, needle: Uint8Array, from: number): number {
  const n = needle.length;
  if (n === 0) return from;
  outer: for (let i = from; i + n <= len; i++) {
    for (let j = 0; j < n; j++) if (data[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Options of the TCP checker. */
export interface TcpProbeOptions {
  send?: Uint8Array;
  receive: readonly Uint8Array[];
  reuseConnection: boolean;
  /** Socket opener (the cluster's transport; plain TCP when absent). */
  connect?: ProbeConnect;
}

/** The TCP ProbeFactory. */
export class TcpProbeFactory implements ProbeFactory {
  readonly type = "TCP";
  constructor(readonly opts: TcpProbeOptions) {}
  create(host: HostImpl, sink: ProbeSink): Probe {
    return new TcpProbe(host, sink, this.opts);
  }
}

class TcpProbe extends ConnProbe {
  readonly #opts: TcpProbeOptions;
  #buf = new Uint8Array(4096);

  constructor(host: HostImpl, sink: ProbeSink, opts: TcpProbeOptions) {
    super(host, sink, opts.connect);
    this.#opts = opts;
  }

  protected retryAfterReuse(outcome: ProbeOutcome): boolean {
    // a kept connection the upstream closed between checks is not a failed check
    return outcome !== ProbeOutcome.SUCCESS;
  }

  protected async exchange(conn: Deno.Conn): Promise<ProbeOutcome> {
    const o = this.#opts;
    if (o.send !== undefined && o.send.length > 0) await writeAll(conn, o.send);
    if (o.receive.length > 0) {
      let len = 0;
      for (;;) {
        if (len === this.#buf.length) {
          if (len >= MAX_BUFFER) throw new Error("Health check response too large");
          const bigger = new Uint8Array(len * 2);
          bigger.set(this.#buf);
          this.#buf = bigger;
        }
        const n = await conn.read(this.#buf.subarray(len));
        if (n === null) throw new Error("Closed by the upstream");
        len += n;
        if (payloadMatches(o.receive, this.#buf, len)) break;
      }
    }
    if (!o.reuseConnection) this.drop();
    return ProbeOutcome.SUCCESS;
  }
}
