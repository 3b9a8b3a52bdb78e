/**
 * statsd over TCP through a cluster (StatsdSink.tcp_cluster_name, Envoy's TcpStatsdSink): newline-terminated
 * lines with full names (`envoy.cluster.web.upstream_rq_total:3|c\n`) on one connection per event loop to a
 * host the cluster's load balancer picks, opened on first use and again after it closes. Flushes go from the
 * main thread, histogram values (`|ms`) from the event loop that recorded them. When more than 16 MiB wait
 * for the socket the connection is dropped with what it buffered and `statsd.cx_overflow` counts it.
 */
import type { HistogramWriter, MetricSnapshot, StatsSink, StatsSinkContext } from "../../../stats/sink.ts";
import type { Counter, Histogram } from "../../../stats/store.ts";
import type { UpstreamConnection } from "../../../upstream/types.ts";
import { DEFAULT_PREFIX } from "../common/statsd.ts";

/** Envoy's MAX_BUFFERED_STATS_BYTES. */
const MAX_BUFFERED = 16 * 1024 * 1024;

/** One connection's writer: lines queue up and go out in order, one write at a time. */
class TcpStatsdWriter {
  readonly #cluster: string;
  readonly #ctx: StatsSinkContext;
  readonly #overflow: Counter;
  readonly #enc = new TextEncoder();
  #up: UpstreamConnection | undefined;
  #queue: string[] = [];
  #queued = 0;
  #sending: Promise<void> | undefined;
  #closed = false;

  constructor(cluster: string, ctx: StatsSinkContext) {
    this.#cluster = cluster;
    this.#ctx = ctx;
    this.#overflow = ctx.stats.counter("statsd.cx_overflow");
  }

  /** Queues text for the connection. */
  write(text: string): void {
    if (this.#closed) return;
    if (this.#queued > MAX_BUFFERED) {
      this.#overflow.inc();
      this.#drop();
      return;
    }
    this.#queue.push(text);
    this.#queued += text.length;
    this.#sending ??= this.#drain();
  }

  #drop(): void {
    this.#queue = [];
    this.#queued = 0;
    this.#disconnect();
  }

  #disconnect(): void {
    const up = this.#up;
    this.#up = undefined;
    if (!up) return;
    try {
      up.conn.close();
    } catch {
      // closed already
    }
    this.#ctx.clusters()?.get(this.#cluster)?.tcpClosed(up, true);
  }

  async #connect(): Promise<UpstreamConnection | undefined> {
    const cluster = this.#ctx.clusters()?.get(this.#cluster);
    const host = cluster?.chooseHost({});
    if (!cluster || !host) return undefined;
    const r = await cluster.connectTcp(host);
    if (!r.ok) return undefined;
    // statsd never answers; a read ending means the server closed
    r.connection.conn.read(new Uint8Array(1)).then(() => {
      if (this.#up === r.connection) this.#disconnect();
    }, () => {
      if (this.#up === r.connection) this.#disconnect();
    });
    return r.connection;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      this.#up ??= await this.#connect();
      const text = this.#queue.join("");
      this.#queue = [];
      this.#queued = 0;
      // as Envoy: without a connection the data is dropped
      if (!this.#up) continue;
      const bytes = this.#enc.encode(text);
      try {
        for (let off = 0; off < bytes.length;) off += await this.#up.conn.write(bytes.subarray(off));
      } catch {
        this.#disconnect();
      }
    }
    this.#sending = undefined;
  }

  /** Waits for queued lines to go out, then closes the connection. */
  async close(): Promise<void> {
    await this.#sending;
    this.#closed = true;
    this.#disconnect();
  }
}

/** The main thread's sink: used counters (`|c`, deltas) and used gauges (`|g`), one write per flush. */
export class TcpStatsdSink implements StatsSink {
  readonly #prefix: string;
  readonly #writer: TcpStatsdWriter;

  constructor(cluster: string, prefix: string, ctx: StatsSinkContext) {
    this.#prefix = prefix === "" ? DEFAULT_PREFIX : prefix;
    this.#writer = new TcpStatsdWriter(cluster, ctx);
  }

  /** Sends one flush. */
  flush(m: MetricSnapshot): void {
    let text = "";
    for (const c of m.counters) text += `${this.#prefix}.${c.name}:${c.delta}|c\n`;
    for (const g of m.gauges) text += `${this.#prefix}.${g.name}:${g.value}|g\n`;
    if (text !== "") this.#writer.write(text);
  }

  /** Closes the connection once the last flush went out. */
  close(): Promise<void> {
    return this.#writer.close();
  }
}

/** One event loop's histogram values as `|ms` timers (whole milliseconds). */
export class TcpStatsdHistogramWriter implements HistogramWriter {
  readonly #prefix: string;
  readonly #writer: TcpStatsdWriter;

  constructor(cluster: string, prefix: string, ctx: StatsSinkContext) {
    this.#prefix = prefix === "" ? DEFAULT_PREFIX : prefix;
    this.#writer = new TcpStatsdWriter(cluster, ctx);
  }

  /** Sends one value. */
  record(h: Histogram, value: number): void {
    this.#writer.write(`${this.#prefix}.${h.name}:${Math.floor(value)}|ms\n`);
  }

  /** Closes the connection once what is queued went out. */
  close(): Promise<void> {
    return this.#writer.close();
  }
}
