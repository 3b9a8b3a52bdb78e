/**
 * Envoy's `--log-format` (spdlog pattern flags) compiled once into a line builder: `%v` message, `%l` level,
 * `%n` logger, `%t` thread, date/time flags (`%Y-%m-%d %T.%e`, local time like spdlog), Envoy's own `%_`
 * (newlines escaped) and `%j` (JSON-escaped message). Source-location flags print nothing (no source info).
 */

/** Envoy's default `--log-format` without the source location (`[%g:%#]`), which nuncio does not have. */
export const DEFAULT_LOG_FORMAT = "[%Y-%m-%d %T.%e][%t][%l][%n] %v";

/** What `--log-format json` expands to (a nuncio convenience: Envoy has no such keyword). */
export const JSON_LOG_FORMAT =
  '{"time":"%Y-%m-%dT%T.%e%z","level":"%l","logger":"%n","thread":"%t","message":"%j"}';

/** One log event as the formatter sees it. */
export interface LogEvent {
  /** spdlog level name: trace, debug, info, warning, error, critical. */
  level: string;
  /** Logger (component) name. */
  logger: string;
  /** Thread name (main_thread, worker_0, ...). */
  thread: string;
  message: string;
  /** Event time, ms since epoch. */
  time: number;
}

/** Builds one line (without the trailing newline) for an event. */
export type LogLineFormatter = (e: LogEvent) => string;

type Part = string | ((e: LogEvent, d: Date) => string);

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const SHORT_LEVEL: Record<string, string> = {
  trace: "T",
  debug: "D",
  info: "I",
  warning: "W",
  error: "E",
  critical: "C",
};

const p2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const p3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);
const hour12 = (d: Date) => p2(d.getHours() % 12 || 12);
const ampm = (d: Date) => (d.getHours() < 12 ? "AM" : "PM");
const hms = (d: Date) => `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
const mdy = (d: Date) => `${p2(d.getMonth() + 1)}/${p2(d.getDate())}/${p2(d.getFullYear() % 100)}`;

function tzOffset(d: Date): string {
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${off < 0 ? "-" : "+"}${p2(Math.floor(a / 60))}:${p2(a % 60)}`;
}

/** C-style escapes (Envoy's `--log-format-escaped` and `%_`): control characters become `\n`, `\t`, `\xNN`. */
export function escapeCStyle(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f\\"']/g, (c) => {
    switch (c) {
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
      case "\\":
        return "\\\\";
      case '"':
        return '\\"';
      case "'":
        return "\\'";
      default:
        return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
    }
  });
}

const FLAGS: Record<string, (e: LogEvent, d: Date) => string> = {
  v: (e) => e.message,
  _: (e) => e.message.replaceAll("\n", "\\n"),
  j: (e) => JSON.stringify(e.message).slice(1, -1),
  t: (e) => e.thread,
  P: () => String(Deno.pid),
  n: (e) => e.logger,
  l: (e) => e.level,
  L: (e) => SHORT_LEVEL[e.level] ?? e.level,
  a: (_e, d) => DAYS[d.getDay()].slice(0, 3),
  A: (_e, d) => DAYS[d.getDay()],
  b: (_e, d) => MONTHS[d.getMonth()].slice(0, 3),
  h: (_e, d) => MONTHS[d.getMonth()].slice(0, 3),
  B: (_e, d) => MONTHS[d.getMonth()],
  c: (_e, d) =>
    `${DAYS[d.getDay()].slice(0, 3)} ${MONTHS[d.getMonth()].slice(0, 3)} ${p2(d.getDate())} ${
      hms(d)
    } ${d.getFullYear()}`,
  C: (_e, d) => p2(d.getFullYear() % 100),
  Y: (_e, d) => String(d.getFullYear()),
  D: (_e, d) => mdy(d),
  x: (_e, d) => mdy(d),
  m: (_e, d) => p2(d.getMonth() + 1),
  d: (_e, d) => p2(d.getDate()),
  H: (_e, d) => p2(d.getHours()),
  I: (_e, d) => hour12(d),
  M: (_e, d) => p2(d.getMinutes()),
  S: (_e, d) => p2(d.getSeconds()),
  e: (_e, d) => p3(d.getMilliseconds()),
  f: (_e, d) => `${p3(d.getMilliseconds())}000`,
  F: (_e, d) => `${p3(d.getMilliseconds())}000000`,
  p: (_e, d) => ampm(d),
  r: (_e, d) => `${hour12(d)}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${ampm(d)}`,
  R: (_e, d) => `${p2(d.getHours())}:${p2(d.getMinutes())}`,
  T: (_e, d) => hms(d),
  X: (_e, d) => hms(d),
  z: (_e, d) => tzOffset(d),
  E: (_e, d) => String(Math.floor(d.getTime() / 1000)),
  // source location: nuncio has none
  "@": () => "",
  s: () => "",
  g: () => "",
  "#": () => "",
  "!": () => "",
};

/**
 * Compiles a `--log-format` pattern (or "json"); `escaped` applies `--log-format-escaped` to the message.
 * Throws on an unknown flag.
 */
export function compileLogFormat(pattern: string, escaped = false): LogLineFormatter {
  const src = pattern === "json" ? JSON_LOG_FORMAT : pattern;
  const parts: Part[] = [];
  let lit = "";
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c !== "%") {
      lit += c;
      continue;
    }
    const f = src[++i];
    if (f === "%") {
      lit += "%";
      continue;
    }
    const fn = f === undefined ? undefined : FLAGS[f];
    if (!fn) throw new Error(`Unknown log format flag "%${f ?? ""}" in "${pattern}"`);
    if (lit) parts.push(lit);
    lit = "";
    parts.push(escaped && f === "v" ? (e) => escapeCStyle(e.message) : fn);
  }
  if (lit) parts.push(lit);
  const needsDate = parts.some((p) => typeof p === "function");
  return (e) => {
    const d = needsDate ? new Date(e.time) : (undefined as unknown as Date);
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : p(e, d);
    return out;
  };
}
