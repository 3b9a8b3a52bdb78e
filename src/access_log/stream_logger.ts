/** The access logger shared by the stdout, stderr and file extensions: format, then buffered write. */
import type { StreamInfo } from "../common/stream_info.ts";
import type { Formatter } from "./formatter.ts";
import type { AccessLogger } from "./types.ts";
import type { BufferedLineWriter } from "./writer.ts";

/** Formats each entry and hands the line to a BufferedLineWriter. */
export class StreamAccessLogger implements AccessLogger {
  readonly #formatter: Formatter;
  readonly #writer: BufferedLineWriter;
  readonly usesTlsFacts: boolean;

  /** Built once per config snapshot by an access logger extension. */
  constructor(formatter: Formatter, writer: BufferedLineWriter, onReopen?: () => void) {
    this.#formatter = formatter;
    this.#writer = writer;
    this.usesTlsFacts = formatter.usesTlsFacts;
    if (onReopen) this.reopen = onReopen;
  }

  /** Formats `info` and queues the line. */
  log(info: StreamInfo): void {
    this.#writer.write(this.#formatter.format(info));
  }

  /** Resolves once queued lines are written. */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  /** Flushes and closes the sink. */
  close(): Promise<void> {
    return this.#writer.close();
  }

  /** Present when the sink can be reopened (files). */
  reopen?: () => void;
}
