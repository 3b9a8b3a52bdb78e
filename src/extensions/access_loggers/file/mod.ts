/** The file access logger (envoy.access_loggers.file): appends lines to `path`, reopened on request. */
import { checkAppendableFile } from "../../../common/file_check.ts";
import { compileFormatter } from "../../../access_log/formatter.ts";
import { StreamAccessLogger } from "../../../access_log/stream_logger.ts";
import type { AccessLoggerCreate } from "../../../access_log/types.ts";
import { BufferedLineWriter, type ByteSink } from "../../../access_log/writer.ts";
import type { Extension } from "../../../registry/registry.ts";
import { type FileAccessLogConfig, fileAccessLogSchema } from "./config.ts";

/** A file opened for append; `reopen` makes the next write go to a freshly opened file (log rotation). */
export class AppendFileSink implements ByteSink {
  readonly path: string;
  #file: Deno.FsFile;
  #reopen = false;

  /** Opens (creating if needed) `path` in append mode; throws when it cannot (a config error). */
  constructor(path: string) {
    this.path = path;
    this.#file = AppendFileSink.#open(path);
  }

  static #open(path: string): Deno.FsFile {
    return Deno.openSync(path, { append: true, create: true });
  }

  /** Writes at the end of the file. */
  write(p: Uint8Array): Promise<number> {
    if (this.#reopen) {
      this.#reopen = false;
      const next = AppendFileSink.#open(this.path);
      this.#file.close();
      this.#file = next;
    }
    return this.#file.write(p);
  }

  /** Asks for a reopen before the next write. */
  reopen(): void {
    this.#reopen = true;
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}

/** Envoy's `/dev/stdout` and `/dev/stderr` idiom: the process's own streams, whatever they are (pipe, socket). */
const stdStreams: Record<string, ByteSink> = {
  "/dev/stdout": { write: (p) => Deno.stdout.write(p) },
  "/dev/stderr": { write: (p) => Deno.stderr.write(p) },
};

const create: AccessLoggerCreate<FileAccessLogConfig> = (config, ctx) => {
  const formatter = compileFormatter(config.format, { clock: ctx.clock });
  const std = stdStreams[config.path];
  if (std) {
    return new StreamAccessLogger(
      formatter,
      new BufferedLineWriter(std, { stats: ctx.stats, name: config.path }),
    );
  }
  let sink: AppendFileSink;
  try {
    sink = new AppendFileSink(config.path);
  } catch (e) {
    throw new Error(`Cannot open access log file "${config.path}": ${(e as Error).message}`);
  }
  const writer = new BufferedLineWriter(sink, { stats: ctx.stats, name: config.path });
  return new StreamAccessLogger(formatter, writer, () => sink.reopen());
};

/** envoy.access_loggers.file. */
export const fileAccessLog: Extension<FileAccessLogConfig, AccessLoggerCreate<FileAccessLogConfig>> = {
  name: "envoy.access_loggers.file",
  typeUrls: ["type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"],
  category: "access_logger",
  schema: fileAccessLogSchema,
  preflight: (config) => {
    const why = checkAppendableFile(config.path);
    return why ? [{ path: ["path"], message: why }] : [];
  },
  create,
};
