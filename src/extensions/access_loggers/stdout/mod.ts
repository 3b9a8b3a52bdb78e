/** The stdout and stderr access loggers (envoy.access_loggers.stdout / envoy.access_loggers.stderr). */
import { compileFormatter } from "../../../access_log/formatter.ts";
import { StreamAccessLogger } from "../../../access_log/stream_logger.ts";
import type { AccessLoggerCreate } from "../../../access_log/types.ts";
import { BufferedLineWriter, type ByteSink } from "../../../access_log/writer.ts";
import type { Extension } from "../../../registry/registry.ts";
import { type StreamAccessLogConfig, streamAccessLogSchema } from "./config.ts";

/** Writes to the process's stdout without closing it. */
const stdoutSink: ByteSink = { write: (p) => Deno.stdout.write(p) };
/** Writes to the process's stderr without closing it. */
const stderrSink: ByteSink = { write: (p) => Deno.stderr.write(p) };

function factory(sink: ByteSink, name: string): AccessLoggerCreate<StreamAccessLogConfig> {
  return (config, ctx) =>
    new StreamAccessLogger(
      compileFormatter(config.log_format, { clock: ctx.clock }),
      new BufferedLineWriter(sink, { stats: ctx.stats, name }),
    );
}

/** envoy.access_loggers.stdout: one line per entry on stdout. */
export const stdoutAccessLog: Extension<StreamAccessLogConfig, AccessLoggerCreate<StreamAccessLogConfig>> = {
  name: "envoy.access_loggers.stdout",
  typeUrls: ["type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"],
  category: "access_logger",
  schema: streamAccessLogSchema,
  create: factory(stdoutSink, "stdout"),
};

/** envoy.access_loggers.stderr: one line per entry on stderr. */
export const stderrAccessLog: Extension<StreamAccessLogConfig, AccessLoggerCreate<StreamAccessLogConfig>> = {
  name: "envoy.access_loggers.stderr",
  typeUrls: ["type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog"],
  category: "access_logger",
  schema: streamAccessLogSchema,
  create: factory(stderrSink, "stderr"),
};
