/**
 * Leveled loggers named after Envoy's components (`main`, `upstream`, `router`, `http`, `conn_handler`, ...),
 * one level per component (`--log-level` sets them all, `--component-log-level` and admin `/logging` set
 * some), lines laid out by Envoy's `--log-format` and written to stderr or `--log-path` (reopened on SIGUSR1).
 * Each thread (main, every worker) has its own copy of these settings; the server keeps them in step.
 */
import { compileLogFormat, DEFAULT_LOG_FORMAT, type LogLineFormatter } from "./log_format.ts";

/** Envoy's log levels, most verbose first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "critical", "off"] as const;
/** One of LOG_LEVELS. */
export type LogLevel = typeof LOG_LEVELS[number];

const LEVEL_INDEX: Readonly<Record<string, number>> = Object.freeze({
  trace: 0,
  debug: 1,
  info: 2,
  warn: 3,
  warning: 3,
  error: 4,
  critical: 5,
  off: 6,
});

/**
 * Envoy's logger ids (ALL_LOGGER_IDS) that nuncio's code logs under or that users may name, plus nuncio's
 * own (`ratelimit*` for the rate-limit service). `/logging` lists these.
 */
export const LOG_COMPONENTS: readonly string[] = [
  "admin",
  "client",
  "config",
  "connection",
  "conn_handler",
  "dns",
  "file",
  "filter",
  "grpc",
  "hc",
  "health_checker",
  "http",
  "http2",
  "init",
  "main",
  "misc",
  "pool",
  "rate_limit_quota",
  "ratelimit",
  "ratelimit.config",
  "ratelimit.redis",
  "rds",
  "router",
  "runtime",
  "secret",
  "stats",
  "tracing",
  "upstream",
  "websocket",
];

interface Component {
  readonly name: string;
  threshold: number;
}

const encoder = new TextEncoder();
let defaultThreshold = LEVEL_INDEX.info;
const components = new Map<string, Component>();
for (const name of LOG_COMPONENTS) components.set(name, { name, threshold: defaultThreshold });
let threadName = "main_thread";
let formatPattern = DEFAULT_LOG_FORMAT;
let formatEscaped = false;
let formatLine: LogLineFormatter = compileLogFormat(DEFAULT_LOG_FORMAT);
let logPath: string | undefined;
let logFile: Deno.FsFile | undefined;

function component(name: string): Component {
  let c = components.get(name);
  if (!c) {
    c = { name, threshold: defaultThreshold };
    components.set(name, c);
  }
  return c;
}

function levelIndex(level: string): number {
  const i = LEVEL_INDEX[level];
  if (i === undefined) throw new Error(`Unknown log level "${level}" (one of ${LOG_LEVELS.join(", ")})`);
  return i;
}

/** Sets every component's level (Envoy's `--log-level`, `/logging?level=`); unknown names throw. */
export function setLogLevel(level: string): void {
  const i = levelIndex(level);
  defaultThreshold = i;
  for (const c of components.values()) c.threshold = i;
}

/** The level `--log-level` or `/logging?level=` set last (components may differ). */
export function getLogLevel(): LogLevel {
  return LOG_LEVELS[defaultThreshold];
}

/** Sets one component's level; throws on an unknown component or level. */
export function setComponentLogLevel(name: string, level: string): void {
  const i = levelIndex(level);
  const c = components.get(name);
  if (!c) throw new Error(`Invalid component specified "${name}"`);
  c.threshold = i;
}

/** Sets several components' levels at once: every entry is checked first, so a bad one changes nothing. */
export function setComponentLogLevels(levels: Record<string, string>): void {
  const checked = Object.entries(levels).map(([name, level]): [Component, number] => {
    const i = levelIndex(level);
    const c = components.get(name);
    if (!c) throw new Error(`Invalid component specified "${name}"`);
    return [c, i];
  });
  for (const [c, i] of checked) c.threshold = i;
}

/** Parses and checks `upstream:debug,connection:trace` (`--component-log-level`, `/logging?paths=`). */
export function parseComponentLogLevels(spec: string): [string, LogLevel][] {
  const out: [string, LogLevel][] = [];
  for (const item of spec.split(",")) {
    const [name, level, extra] = item.split(":").map((s) => s.trim());
    if (!name || level === undefined || extra !== undefined) {
      throw new Error(`Component log levels look like "upstream:debug,connection:trace", not "${spec}"`);
    }
    const i = levelIndex(level);
    if (!components.has(name)) throw new Error(`Invalid component specified "${name}"`);
    out.push([name, LOG_LEVELS[i]]);
  }
  return out;
}

/** Every component's level, sorted by name (admin `/logging`). */
export function componentLogLevels(): Record<string, LogLevel> {
  const names = [...components.keys()].sort();
  return Object.fromEntries(names.map((n) => [n, LOG_LEVELS[components.get(n)!.threshold]]));
}

/** Sets the thread name printed by `%t` ("main_thread", "worker_0", ...). */
export function setLogTag(tag: string): void {
  threadName = tag;
}

/** Sets the line layout (`--log-format`, "json" for nuncio's JSON lines) and `--log-format-escaped`. */
export function setLogFormat(pattern: string, escaped = false): void {
  formatLine = compileLogFormat(pattern, escaped);
  formatPattern = pattern;
  formatEscaped = escaped;
}

/** Sends log lines to `path` (appending) instead of stderr; undefined goes back to stderr. Throws if unopenable. */
export function setLogPath(path: string | undefined): void {
  const next = path === undefined ? undefined : Deno.openSync(path, { append: true, create: true });
  logFile?.close();
  logFile = next;
  logPath = path;
}

/** Reopens the `--log-path` file (SIGUSR1, after logrotate moved it); no-op when logging to stderr. */
export function reopenLogFile(): void {
  if (logPath === undefined) return;
  try {
    setLogPath(logPath);
  } catch (e) {
    new Logger("main").error(`Cannot reopen log file "${logPath}": ${(e as Error).message}`);
  }
}

/** This thread's log settings, structured-clone safe (handed to workers). */
export interface LogSettings {
  level: LogLevel;
  components: Record<string, LogLevel>;
  format: string;
  escaped: boolean;
  path?: string;
}

/** The current settings (for a worker to apply). */
export function logSettings(): LogSettings {
  return {
    level: getLogLevel(),
    components: componentLogLevels(),
    format: formatPattern,
    escaped: formatEscaped,
    path: logPath,
  };
}

/** Applies settings from the main thread (workers at start and after /logging changes). */
export function applyLogSettings(s: LogSettings): void {
  setLogLevel(s.level);
  for (const [name, level] of Object.entries(s.components)) component(name).threshold = levelIndex(level);
  if (s.format !== formatPattern || s.escaped !== formatEscaped) setLogFormat(s.format, s.escaped);
  if (s.path !== logPath) setLogPath(s.path);
}

/** A logger for one component; cheap to create, checks its component's level before formatting. */
export class Logger {
  readonly #c: Component;
  readonly #prefix: string;

  /** `name` is the component (Envoy's logger id); `prefix` starts every message (e.g. "[ingress] "). */
  constructor(readonly name: string, prefix = "") {
    this.#c = component(name);
    this.#prefix = prefix;
  }

  /** True when `level` would be printed (guard expensive messages with it). */
  enabled(level: LogLevel): boolean {
    return LEVEL_INDEX[level] >= this.#c.threshold;
  }

  /** True when debug lines print: one field read, for per-request guards. */
  get debugEnabled(): boolean {
    return this.#c.threshold <= 1;
  }

  /** True when trace lines print. */
  get traceEnabled(): boolean {
    return this.#c.threshold <= 0;
  }

  /** Logs at trace. */
  trace(msg: string): void {
    if (this.#c.threshold <= 0) this.#write("trace", msg);
  }
  /** Logs at debug. */
  debug(msg: string): void {
    if (this.#c.threshold <= 1) this.#write("debug", msg);
  }
  /** Logs at info. */
  info(msg: string): void {
    if (this.#c.threshold <= 2) this.#write("info", msg);
  }
  /** Logs at warning. */
  warn(msg: string): void {
    if (this.#c.threshold <= 3) this.#write("warning", msg);
  }
  /** Logs at error. */
  error(msg: string): void {
    if (this.#c.threshold <= 4) this.#write("error", msg);
  }
  /** Logs at critical. */
  critical(msg: string): void {
    if (this.#c.threshold <= 5) this.#write("critical", msg);
  }

  #write(level: string, msg: string): void {
    const line = formatLine({
      level,
      logger: this.name,
      thread: threadName,
      message: this.#prefix + msg,
      time: Date.now(),
    }) + "\n";
    try {
      (logFile ?? Deno.stderr).writeSync(encoder.encode(line));
    } catch {
      // the log file or stderr is gone: nothing else to do
    }
  }
}
