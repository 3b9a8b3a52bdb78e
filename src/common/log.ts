/** A leveled logger writing one line per event to stderr (the `--log-level` flag sets the level). */

/** Envoy's log levels, most verbose first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "critical", "off"] as const;
/** One of LOG_LEVELS. */
export type LogLevel = typeof LOG_LEVELS[number];

const encoder = new TextEncoder();
let threshold = LOG_LEVELS.indexOf("info");
let workerTag = "";

/** Sets the process-wide level; unknown names throw. */
export function setLogLevel(level: string): void {
  const i = LOG_LEVELS.indexOf(level as LogLevel);
  if (i < 0) throw new Error(`Unknown log level "${level}" (one of ${LOG_LEVELS.join(", ")})`);
  threshold = i;
}

/** Current level name. */
export function getLogLevel(): LogLevel {
  return LOG_LEVELS[threshold];
}

/** Sets a tag (e.g. "worker 2") printed on every line of this thread. */
export function setLogTag(tag: string): void {
  workerTag = tag;
}

/** A named logger; cheap to create, checks the level before formatting. */
export class Logger {
  constructor(readonly name: string) {}
  /** True when `level` would be printed (guard expensive messages with it). */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= threshold;
  }
  trace(msg: string): void {
    if (threshold <= 0) this.#write("trace", msg);
  }
  debug(msg: string): void {
    if (threshold <= 1) this.#write("debug", msg);
  }
  info(msg: string): void {
    if (threshold <= 2) this.#write("info", msg);
  }
  warn(msg: string): void {
    if (threshold <= 3) this.#write("warning", msg);
  }
  error(msg: string): void {
    if (threshold <= 4) this.#write("error", msg);
  }
  #write(level: string, msg: string): void {
    const line = `[${new Date().toISOString()}][${level}][${this.name}]${
      workerTag ? `[${workerTag}]` : ""
    } ${msg}\n`;
    try {
      Deno.stderr.writeSync(encoder.encode(line));
    } catch {
      // stderr closed: nothing else to do
    }
  }
}
