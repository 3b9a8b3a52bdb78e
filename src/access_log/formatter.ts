/**
 * Access log formatters compiled once per `log_format`: text (Envoy's default format when none is
 * given) and json_format. Empty values print "-" in text and null in JSON (omitted with
 * omit_empty_values); numbers stay numbers in JSON when a value is a single operator.
 */
import { type Clock, systemClock } from "../common/clock.ts";
import type { StreamInfo } from "../common/stream_info.ts";
import { parseFormat } from "./format_parser.ts";
import { evaluate, type FormatPart, usesTlsFacts } from "./operators.ts";

/** Envoy's default access log format (note the trailing newline). */
export const DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% " +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/** A compiled log format. */
export interface Formatter {
  /** Renders one entry (a complete line for JSON, the text format as written otherwise). */
  format(info: StreamInfo): string;
  /** MIME type of the output ("text/plain" or "application/json" unless configured). */
  readonly contentType: string;
  /** Some operator prints SNI or TLS version/cipher/session id (known at compile time; see `usesTlsFacts`). */
  readonly usesTlsFacts: boolean;
}

/** The validated `log_format` (SubstitutionFormatString) as the formatter compiler takes it. */
export interface LogFormatSpec {
  /** Text format; undefined with json set means JSON. */
  text?: string;
  /** json_format struct. */
  json?: Record<string, unknown>;
  omitEmptyValues?: boolean;
  contentType?: string;
  sortProperties?: boolean;
}

/** Options for compiling a formatter. */
export interface FormatterOptions {
  /** Time source for %DURATION% of unfinished streams (default: the system clock). */
  clock?: Clock;
}

/** Compiles a format spec (default format when `spec` is undefined); throws on a bad operator. */
export function compileFormatter(spec: LogFormatSpec | undefined, opts: FormatterOptions = {}): Formatter {
  const clock = opts.clock ?? systemClock;
  if (spec?.json) {
    return new JsonFormatter(
      spec.json,
      !!spec.omitEmptyValues,
      !!spec.sortProperties,
      clock,
      spec.contentType,
    );
  }
  return new TextFormatter(spec?.text ?? DEFAULT_FORMAT, !!spec?.omitEmptyValues, clock, spec?.contentType);
}

/** Renders parts as text; "-" (or "" when omitting) stands for a missing value. */
function renderText(parts: readonly FormatPart[], info: StreamInfo, clock: Clock, empty: string): string {
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (typeof p === "string") {
      out += p;
      continue;
    }
    const v = evaluate(p, info, clock);
    out += v === null ? empty : v;
  }
  return out;
}

/** A text format string. */
export class TextFormatter implements Formatter {
  readonly contentType: string;
  readonly usesTlsFacts: boolean;
  readonly #parts: FormatPart[];
  readonly #empty: string;
  readonly #clock: Clock;

  /** Parses `format` (throws on an unknown operator). */
  constructor(format: string, omitEmpty: boolean, clock: Clock, contentType = "text/plain") {
    this.#parts = parseFormat(format);
    this.usesTlsFacts = usesTlsFacts(this.#parts);
    this.#empty = omitEmpty ? "" : "-";
    this.#clock = clock;
    this.contentType = contentType;
  }

  /** Renders one entry. */
  format(info: StreamInfo): string {
    return renderText(this.#parts, info, this.#clock, this.#empty);
  }
}

// JSON tree node kinds.
const J_CONST = 0, J_TYPED = 1, J_TEXT = 2, J_OBJECT = 3;

interface JsonNode {
  /** `"key":` already JSON-encoded. */
  readonly keyPrefix: string;
  readonly kind: number;
  /** J_CONST: the encoded value. */
  readonly encoded: string;
  /** J_TYPED / J_TEXT: the parts. */
  readonly parts: readonly FormatPart[];
  /** J_OBJECT: children. */
  readonly children: readonly JsonNode[];
}

/** A json_format struct; one JSON object per line. */
export class JsonFormatter implements Formatter {
  readonly contentType: string;
  readonly usesTlsFacts: boolean;
  readonly #root: readonly JsonNode[];
  readonly #omit: boolean;
  readonly #clock: Clock;

  /** Compiles the struct (throws on an unknown operator or a list value). */
  constructor(
    struct: Record<string, unknown>,
    omitEmpty: boolean,
    sort: boolean,
    clock: Clock,
    contentType = "application/json",
  ) {
    this.#root = compileObject(struct, sort, "");
    this.usesTlsFacts = nodesUseTlsFacts(this.#root);
    this.#omit = omitEmpty;
    this.#clock = clock;
    this.contentType = contentType;
  }

  /** Renders one entry as a JSON line. */
  format(info: StreamInfo): string {
    return this.#object(this.#root, info) + "\n";
  }

  #object(nodes: readonly JsonNode[], info: StreamInfo): string {
    let out = "{";
    let first = true;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i];
      let v: string;
      switch (n.kind) {
        case J_CONST:
          v = n.encoded;
          break;
        case J_OBJECT:
          v = this.#object(n.children, info);
          break;
        case J_TYPED: {
          const x = evaluate(n.parts[0] as Exclude<FormatPart, string>, info, this.#clock);
          if (x === null) {
            if (this.#omit) continue;
            v = "null";
          } else {
            v = typeof x === "number" ? String(x) : JSON.stringify(x);
          }
          break;
        }
        default: {
          const s = renderText(n.parts, info, this.#clock, this.#omit ? "" : "-");
          if (s === "" && this.#omit) continue;
          v = JSON.stringify(s);
        }
      }
      out += (first ? "" : ",") + n.keyPrefix + v;
      first = false;
    }
    return out + "}";
  }
}

function nodesUseTlsFacts(nodes: readonly JsonNode[]): boolean {
  return nodes.some((n) => usesTlsFacts(n.parts) || nodesUseTlsFacts(n.children));
}

function compileObject(struct: Record<string, unknown>, sort: boolean, path: string): JsonNode[] {
  const keys = Object.keys(struct);
  if (sort) keys.sort();
  return keys.map((k): JsonNode => {
    const v = struct[k];
    const keyPrefix = JSON.stringify(k) + ":";
    const base = { keyPrefix, encoded: "", parts: [] as FormatPart[], children: [] as JsonNode[] };
    if (typeof v === "string") {
      let parts: FormatPart[];
      try {
        parts = parseFormat(v);
      } catch (e) {
        throw new Error(`${(e as Error).message} (json_format key "${path}${k}")`);
      }
      if (parts.length === 1 && typeof parts[0] !== "string") return { ...base, kind: J_TYPED, parts };
      if (parts.every((p) => typeof p === "string")) {
        return { ...base, kind: J_CONST, encoded: JSON.stringify(parts.join("")) };
      }
      return { ...base, kind: J_TEXT, parts };
    }
    if (typeof v === "number" || typeof v === "boolean" || v === null) {
      return { ...base, kind: J_CONST, encoded: JSON.stringify(v) };
    }
    if (Array.isArray(v)) throw new Error(`List values are not supported in json_format (key "${path}${k}")`);
    if (typeof v === "object") {
      return {
        ...base,
        kind: J_OBJECT,
        children: compileObject(v as Record<string, unknown>, sort, `${path}${k}.`),
      };
    }
    throw new Error(`Unsupported value in json_format (key "${path}${k}")`);
  });
}
