/**
 * A non-blocking line writer for access logs: lines go to an in-memory buffer and are written
 * asynchronously, one write in flight at a time, coalescing every line queued meanwhile. When the
 * buffer is over its bound, new lines are dropped and counted.
 *
 * Stats (Envoy's `filesystem.` names plus one of nuncio's): filesystem.write_buffered (lines
 * accepted), filesystem.write_completed (writes done), filesystem.write_failed,
 * filesystem.write_total_buffered (gauge, bytes waiting), filesystem.write_dropped (lines dropped).
 */
import { Logger } from "../common/log.ts";
import type { Counter, Gauge, Scope } from "../stats/store.ts";

/** Where bytes go (a file, stdout, stderr). */
export interface ByteSink {
  /** Writes some bytes; resolves to how many were written. */
  write(p: Uint8Array): Promise<number>;
  /** Releases the sink (not called for stdout/stderr). */
  close?(): void;
  /** Makes the next write go to a freshly opened file (files only; see reopenAccessLogs). */
  reopen?(): void;
}

/** Sinks of this thread's open writers that can be reopened (files). */
const reopenable = new Set<ByteSink>();

/** Reopens every access log file of this thread (SIGUSR1, admin /reopen_logs); returns how many. */
export function reopenAccessLogs(): number {
  for (const sink of reopenable) sink.reopen!();
  return reopenable.size;
}

/** Options of a BufferedLineWriter. */
export interface LineWriterOptions {
  /** Stats scope (the root store: names start with "filesystem."). */
  stats: Scope;
  /** Upper bound of queued characters before lines are dropped (default 4 MiB). */
  maxBufferBytes?: number;
  /** Name for error logs (the path, "stdout", ...). */
  name: string;
}

const encoder = new TextEncoder();
const log = new Logger("file");

/** Buffers lines and writes them in the background. */
export class BufferedLineWriter {
  readonly #sink: ByteSink;
  readonly #max: number;
  readonly #name: string;
  #pending: string[] = [];
  #pendingBytes = 0;
  #writing: Promise<void> | null = null;
  #closed = false;
  readonly #buffered: Counter;
  readonly #completed: Counter;
  readonly #failed: Counter;
  readonly #dropped: Counter;
  readonly #total: Gauge;

  /** Wraps `sink`; nothing is written until the first line. */
  constructor(sink: ByteSink, opts: LineWriterOptions) {
    this.#sink = sink;
    this.#max = opts.maxBufferBytes ?? 4 * 1024 * 1024;
    this.#name = opts.name;
    const s = opts.stats.scope("filesystem");
    this.#buffered = s.counter("write_buffered");
    this.#completed = s.counter("write_completed");
    this.#failed = s.counter("write_failed");
    this.#dropped = s.counter("write_dropped");
    this.#total = s.gauge("write_total_buffered");
    if (sink.reopen) reopenable.add(sink);
  }

  /** Queues one line (already terminated); never blocks, never throws. */
  write(line: string): void {
    if (this.#closed || this.#pendingBytes + line.length > this.#max) {
      this.#dropped.inc();
      return;
    }
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    this.#buffered.inc();
    this.#total.inc(line.length);
    if (this.#writing === null) this.#writing = this.#drain();
  }

  /** Resolves once every line queued so far has been written (or failed). */
  async flush(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }

  /** Flushes, then closes the sink; later lines are dropped. */
  async close(): Promise<void> {
    await this.flush();
    if (this.#closed) return;
    this.#closed = true;
    reopenable.delete(this.#sink);
    try {
      this.#sink.close?.();
    } catch (e) {
      log.warn(`Closing access log ${this.#name} failed: ${(e as Error).message}`);
    }
  }

  async #drain(): Promise<void> {
    // Let the lines logged in the same tick join the first write.
    await null;
    while (this.#pending.length > 0) {
      const chunk = this.#pending.length === 1 ? this.#pending[0] : this.#pending.join("");
      const queued = this.#pendingBytes;
      this.#pending = [];
      this.#pendingBytes = 0;
      const bytes = encoder.encode(chunk);
      try {
        let off = 0;
        while (off < bytes.length) off += await this.#sink.write(off ? bytes.subarray(off) : bytes);
        this.#completed.inc();
      } catch (e) {
        this.#failed.inc();
        log.warn(`Writing access log ${this.#name} failed: ${(e as Error).message}`);
      }
      this.#total.dec(queued);
    }
    this.#writing = null;
  }
}
