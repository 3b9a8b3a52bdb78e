/**
 * Envoy's `--log-format` (spdlog pattern flags) compiled once into a line builder: `%v` message, `%l` level,
 * `%n` logger, `%t` thread, date/time flags (`%Y-%m-%d %T.%e`, local time like spdlog), elapsed time since the
 * previous line (`%o %i %u %O`), spdlog's `%<align><width>[!]<flag>` padding, and Envoy's own flags `%_`
 * (newlines escaped), `%j` and `%+` (JSON-escaped message) and `%*` (log tags: nuncio has none).
 * Source-location flags and the colour range (`%^`, `%$`) print nothing; an unknown flag prints as written.
 */
import { DAYS, DAYS_LONG, MONTHS, MONTHS_LONG } from "../access_log/strftime.ts";

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

/** A compiled piece: literal text, or a function of the event, its local Date and ms since the last line. */
type Part = string | FlagFn;
type FlagFn = (e: LogEvent, d: Date, elapsed: number) => string;

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

const jsonEscaped: FlagFn = (e) => JSON.stringify(e.message).slice(1, -1);

/** spdlog's flags plus Envoy's (`_ j * +`, which take precedence in Envoy's formatter). */
const FLAGS: Record<string, FlagFn> = {
  v: (e) => e.message,
  _: (e) => e.message.replaceAll("\n", "\\n"),
  j: jsonEscaped,
  // Envoy's ExtractedMessage (the message after any "[Tags: ...]" prefix, JSON-escaped; nuncio has no tags)
  // overrides spdlog's full format `%+`.
  "+": jsonEscaped,
  // Envoy's ExtractedTags: `,"key":"value",...` of the message's tags; nuncio's messages have none.
  "*": () => "",
  t: (e) => e.thread,
  P: () => String(Deno.pid),
  n: (e) => e.logger,
  l: (e) => e.level,
  L: (e) => SHORT_LEVEL[e.level] ?? e.level,
  a: (_e, d) => DAYS[d.getDay()],
  A: (_e, d) => DAYS_LONG[d.getDay()],
  b: (_e, d) => MONTHS[d.getMonth()],
  h: (_e, d) => MONTHS[d.getMonth()],
  B: (_e, d) => MONTHS_LONG[d.getMonth()],
  c: (_e, d) => `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${p2(d.getDate())} ${hms(d)} ${d.getFullYear()}`,
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
  // elapsed since the previous line: ms, us, ns, s
  o: (_e, _d, ms) => String(ms),
  i: (_e, _d, ms) => String(ms * 1000),
  u: (_e, _d, ms) => String(ms * 1_000_000),
  O: (_e, _d, ms) => String(Math.floor(ms / 1000)),
  // colour range start/end: nuncio never colours
  "^": () => "",
  $: () => "",
  // source location: nuncio has none
  "@": () => "",
  s: () => "",
  g: () => "",
  "#": () => "",
  "!": () => "",
};

/** Flags that read the event time (a Date is built per line only when one of these is used). */
const DATE_FLAGS = new Set("aAbhBcCYDxmdHIMSefFprRTXzE");
/** Flags that print the time since the previous line. */
const ELAPSED_FLAGS = new Set("oiuO");
/** Flags whose formatter ignores a padding spec (colour range, Envoy's custom flags). */
const UNPADDED_FLAGS = new Set("^$_j*+");
/** Flags that always print "" (source location, colour range, tags): compiled to padded literals. */
const EMPTY_FLAGS = new Set("@sg#!^$*");
/** spdlog's cap on a padding width. */
const MAX_WIDTH = 64;

// padding sides: spdlog pads on the left by default, `-` pads on the right, `=` centers
const LEFT = 0, RIGHT = 1, CENTER = 2;

/** spdlog's scoped_padder: pads `s` to `width` with spaces, or cuts it to `width` when `truncate`. */
function pad(s: string, width: number, side: number, truncate: boolean): string {
  const n = width - s.length;
  if (n <= 0) return n < 0 && truncate ? s.slice(0, width) : s;
  if (side === LEFT) return " ".repeat(n) + s;
  if (side === RIGHT) return s + " ".repeat(n);
  const half = n >> 1;
  return " ".repeat(half) + s + " ".repeat(n - half);
}

/**
 * Compiles a `--log-format` pattern (or "json"); `escaped` applies `--log-format-escaped` to the message.
 * Never throws: like spdlog, an unknown flag prints as written (`%Q`) and a trailing `%` prints nothing.
 */
export function compileLogFormat(pattern: string, escaped = false): LogLineFormatter {
  const src = pattern === "json" ? JSON_LOG_FORMAT : pattern;
  const parts: Part[] = [];
  let lit = "";
  let needsDate = false;
  let needsElapsed = false;
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const c = src[i];
    if (c !== "%") {
      lit += c;
      continue;
    }
    // spdlog's padding spec: %<align><width>[!]<flag>
    i++;
    let side = LEFT;
    if (src[i] === "-") {
      side = RIGHT;
      i++;
    } else if (src[i] === "=") {
      side = CENTER;
      i++;
    }
    let width = 0;
    let truncate = false;
    if (i < n && src[i] >= "0" && src[i] <= "9") {
      while (i < n && src[i] >= "0" && src[i] <= "9") width = width * 10 + (src.charCodeAt(i++) - 48);
      if (src[i] === "!") {
        truncate = true;
        i++;
      }
      width = Math.min(width, MAX_WIDTH);
    }
    if (i >= n) break; // a trailing "%" (or "%-8") prints nothing, as in spdlog
    const f = src[i];
    const padded = width > 0 && !UNPADDED_FLAGS.has(f);
    if (f === "%") {
      lit += "%";
      continue;
    }
    const fn = Object.hasOwn(FLAGS, f) ? FLAGS[f] : undefined;
    if (!fn) {
      // spdlog: "%<width>!x" with an unknown x is the function-name flag `%!` (padded, empty) followed by x
      lit += truncate ? pad("", width, side, false) + f : `%${f}`;
      continue;
    }
    if (EMPTY_FLAGS.has(f)) {
      if (padded) lit += pad("", width, side, truncate);
      continue;
    }
    if (lit) parts.push(lit);
    lit = "";
    if (DATE_FLAGS.has(f)) needsDate = true;
    if (ELAPSED_FLAGS.has(f)) needsElapsed = true;
    const base: FlagFn = escaped && f === "v" ? (e) => escapeCStyle(e.message) : fn;
    parts.push(padded ? (e, d, ms) => pad(base(e, d, ms), width, side, truncate) : base);
  }
  if (lit) parts.push(lit);
  // spdlog's elapsed formatters start from the time the pattern was set
  let last = Date.now();
  return (e) => {
    const d = needsDate ? new Date(e.time) : (undefined as unknown as Date);
    let elapsed = 0;
    if (needsElapsed) {
      elapsed = Math.max(0, e.time - last);
      last = e.time;
    }
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : p(e, d, elapsed);
    return out;
  };
}
