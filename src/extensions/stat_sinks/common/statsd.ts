/**
 * What the statsd and dog_statsd sinks share (Envoy's UdpStatsdSink): the UDP address schema, the line format
 * `<prefix>.<name>:<value>|<type>[|#tag:value,...]`, datagram batching up to a byte budget, and the sinks
 * themselves (flush on the main thread; a histogram writer per event loop sending each value as a `|ms` timer).
 */
import { z } from "zod/mini";
import { ipFamily } from "../../../common/ip.ts";
import { integer, notSupportedFields, onlyValues } from "../../../config/schema_util.ts";
import { envoyEnum } from "../../../config/schema_util.ts";
import type {
  HistogramWriter,
  MetricSnapshot,
  StatsSink,
  StatsSinkContext,
  StatsSinkFactory,
} from "../../../stats/sink.ts";
import type { Histogram } from "../../../stats/store.ts";
import type { Tag, TagProducer } from "../../../stats/tags.ts";

/** envoy.config.core.v3.Address of a statsd server: a socket_address with an IP literal (UDP), as Envoy. */
export const statsdAddressSchema = z.strictObject({
  socket_address: z.strictObject({
    protocol: z.optional(envoyEnum(["TCP", "UDP"])),
    address: z.string().check(z.refine((a) => ipFamily(a) !== 0, { message: "malformed IP address" })),
    port_value: integer.check(z.minimum(0), z.maximum(65535)),
    resolver_name: onlyValues([""], "the address is an IP literal"),
    ipv4_compat: z.optional(z.boolean()),
  }),
  ...notSupportedFields(["pipe", "envoy_internal_address"]),
});

/** The parsed address. */
export type StatsdAddress = z.output<typeof statsdAddressSchema>;

/** Where datagrams go. */
export interface UdpTarget {
  readonly hostname: string;
  readonly port: number;
}

/** The target of a parsed address. */
export function udpTarget(a: StatsdAddress): UdpTarget {
  return { hostname: a.socket_address.address, port: a.socket_address.port_value };
}

/** Envoy's default prefix when the config's is empty. */
export const DEFAULT_PREFIX = "envoy";

/** The dogstatsd tag suffix: `|#name:value,name:value` (empty without tags). */
export function tagSuffix(tags: readonly Tag[]): string {
  if (tags.length === 0) return "";
  let s = "|#";
  for (let i = 0; i < tags.length; i++) s += `${i ? "," : ""}${tags[i].name}:${tags[i].value}`;
  return s;
}

/** A number as Envoy prints a uint64 (integers; anything else as JavaScript prints it). */
function num(v: number): string {
  return String(v);
}

/** At most this many datagrams wait for the socket; beyond, values are dropped (statsd over UDP is lossy). */
const MAX_PENDING = 4096;

/**
 * One UDP socket sending statsd lines: `write` sends one datagram; `writeAll` joins lines with "\n" into
 * datagrams of at most `bufferSize` bytes (Envoy's writeBuffer: a line as long as the budget goes alone, at
 * once; 0 = one line per datagram). The socket opens on first use.
 */
export class UdpStatsdWriter {
  readonly #target: UdpTarget;
  readonly #bufferSize: number;
  #conn: Deno.DatagramConn | undefined;
  /** Datagrams not sent yet; sent one after the other so they leave in order. */
  #queue: Uint8Array[] = [];
  #sending: Promise<void> | undefined;
  #closed = false;
  readonly #enc = new TextEncoder();

  constructor(target: UdpTarget, bufferSize = 0) {
    this.#target = target;
    this.#bufferSize = bufferSize;
  }

  /** Sends one datagram (dropped once the writer is closed or too many wait). */
  write(text: string): void {
    if (this.#closed || this.#queue.length >= MAX_PENDING) return;
    this.#queue.push(this.#enc.encode(text));
    this.#sending ??= this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#conn === undefined) {
      const v6 = ipFamily(this.#target.hostname) === 6;
      this.#conn = Deno.listenDatagram({ transport: "udp", hostname: v6 ? "::" : "0.0.0.0", port: 0 });
    }
    const addr: Deno.NetAddr = { transport: "udp", ...this.#target };
    for (let d = this.#queue.shift(); d !== undefined; d = this.#queue.shift()) {
      await this.#conn.send(d, addr).catch(() => {});
    }
    this.#sending = undefined;
  }

  /** Sends lines batched by the byte budget, in order. */
  writeAll(lines: readonly string[]): void {
    const max = this.#bufferSize;
    let buf = "";
    for (const line of lines) {
      if (line.length >= max) {
        this.write(line);
        continue;
      }
      if (buf.length + line.length + 1 > max) {
        if (buf.length > 0) this.write(buf);
        buf = "";
      } else if (buf.length > 0) buf += "\n";
      buf += line;
    }
    if (buf.length > 0) this.write(buf);
  }

  /** Waits for datagrams in flight, then closes the socket. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#sending;
    this.#conn?.close();
    this.#conn = undefined;
  }
}

/** How a sink names stats: the full name (statsd), or the tag-extracted name plus dogstatsd tags. */
interface Naming {
  readonly prefix: string;
  /** Null: no tags (statsd). */
  readonly tags: TagProducer | null;
}

function line(n: Naming, name: string, value: string, type: string): string {
  if (n.tags === null) return `${n.prefix}.${name}:${value}|${type}`;
  const ex = n.tags.extract(name);
  return `${n.prefix}.${ex.name}:${value}|${type}${tagSuffix(ex.tags)}`;
}

/** The lines of one flush: used counters' deltas (`|c`), then used gauges (`|g`), in snapshot order. */
export function flushLines(n: Naming, m: MetricSnapshot): string[] {
  const out: string[] = [];
  for (const c of m.counters) out.push(line(n, c.name, num(c.delta), "c"));
  for (const g of m.gauges) out.push(line(n, g.name, num(g.value), "g"));
  return out;
}

/** A histogram value as statsd gets it: whole milliseconds (Envoy's uint64 values), as a `|ms` timer. */
export function histogramLine(n: Naming, name: string, value: number): string {
  return line(n, name, num(Math.floor(value)), "ms");
}

class UdpSink implements StatsSink {
  constructor(readonly naming: Naming, readonly writer: UdpStatsdWriter) {}
  flush(m: MetricSnapshot): void {
    this.writer.writeAll(flushLines(this.naming, m));
  }
  close(): Promise<void> {
    return this.writer.close();
  }
}

class UdpHistogramWriter implements HistogramWriter {
  /** Each histogram's line around the value: `[prefix.name:, |ms|#tags]`, built on its first value. */
  readonly #parts = new WeakMap<Histogram, [string, string]>();
  constructor(readonly naming: Naming, readonly writer: UdpStatsdWriter) {}
  record(h: Histogram, value: number): void {
    let p = this.#parts.get(h);
    if (!p) {
      const whole = histogramLine(this.naming, h.name, 0);
      const at = whole.indexOf(":0|ms");
      this.#parts.set(h, p = [whole.slice(0, at + 1), whole.slice(at + 2)]);
    }
    this.writer.write(p[0] + Math.floor(value) + p[1]);
  }
  close(): Promise<void> {
    return this.writer.close();
  }
}

/** What the UDP sinks read from their config. */
export interface UdpSinkSettings {
  readonly target: UdpTarget;
  readonly prefix: string;
  /** Send dogstatsd tags with tag-extracted names. */
  readonly useTags: boolean;
  /** Byte budget of one datagram (0: one line per datagram). */
  readonly bufferSize: number;
}

/** A StatsSinkFactory for a UDP statsd flavour, given how to read its config. */
export function udpSinkFactory<C>(settings: (c: C) => UdpSinkSettings): StatsSinkFactory<C> {
  const naming = (s: UdpSinkSettings, ctx: StatsSinkContext): Naming => ({
    prefix: s.prefix === "" ? DEFAULT_PREFIX : s.prefix,
    tags: s.useTags ? ctx.tags : null,
  });
  return {
    createSink(c, ctx) {
      const s = settings(c);
      return new UdpSink(naming(s, ctx), new UdpStatsdWriter(s.target, s.bufferSize));
    },
    createHistogramWriter(c, ctx) {
      const s = settings(c);
      // Envoy writes each value on the thread that recorded it, one datagram each (no buffering)
      return new UdpHistogramWriter(naming(s, ctx), new UdpStatsdWriter(s.target, 0));
    },
  };
}
