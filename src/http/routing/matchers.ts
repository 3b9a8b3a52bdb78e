/** Compiled string, header and query parameter matchers (built at config time, allocation-light per request). */
import type { StringMatcherConfig } from "../../config/common.ts";
import type { HeaderMatcherConfig, QueryParameterMatcherConfig } from "./config_match.ts";
import { compileFullMatch } from "./regex.ts";
import type { RouteRequest } from "./types.ts";

const enum S {
  Exact,
  Prefix,
  Suffix,
  Contains,
  Regex,
}

/** envoy.type.matcher.v3.StringMatcher, compiled. */
export class StringMatch {
  #kind: S;
  #value: string;
  #ignoreCase: boolean;
  #regex: RegExp | undefined;

  constructor(kind: S, value: string, ignoreCase: boolean, regex?: RegExp) {
    this.#kind = kind;
    this.#ignoreCase = ignoreCase && kind !== S.Regex;
    this.#value = this.#ignoreCase ? value.toLowerCase() : value;
    this.#regex = regex;
  }

  /** Compiles a StringMatcher config (regex already validated by the schema). */
  static from(c: StringMatcherConfig): StringMatch {
    const ic = c.ignore_case ?? false;
    if (c.exact !== undefined) return new StringMatch(S.Exact, c.exact, ic);
    if (c.prefix !== undefined) return new StringMatch(S.Prefix, c.prefix, ic);
    if (c.suffix !== undefined) return new StringMatch(S.Suffix, c.suffix, ic);
    if (c.contains !== undefined) return new StringMatch(S.Contains, c.contains, ic);
    return StringMatch.regex(c.safe_regex!.regex);
  }

  /** A full-match regex matcher. */
  static regex(pattern: string): StringMatch {
    return new StringMatch(S.Regex, "", false, compileFullMatch(pattern));
  }

  /** An exact/prefix/suffix/contains matcher (case-sensitive). */
  static of(kind: "exact" | "prefix" | "suffix" | "contains", value: string): StringMatch {
    const k = { exact: S.Exact, prefix: S.Prefix, suffix: S.Suffix, contains: S.Contains }[kind];
    return new StringMatch(k, value, false);
  }

  /** True when `v` matches. */
  match(v: string): boolean {
    if (this.#ignoreCase) v = v.toLowerCase();
    switch (this.#kind) {
      case S.Exact:
        return v === this.#value;
      case S.Prefix:
        return v.startsWith(this.#value);
      case S.Suffix:
        return v.endsWith(this.#value);
      case S.Contains:
        return v.includes(this.#value);
      case S.Regex:
        return this.#regex!.test(v);
    }
  }
}

/**
 * A request header's value as Envoy's matchers see it: pseudo-headers come from the request fields,
 * several lines of one header are joined with ","; undefined when absent. `name` is lowercase.
 */
export function headerValue(req: RouteRequest, name: string): string | undefined {
  if (name.charCodeAt(0) === 58 /* : */) {
    switch (name) {
      case ":path":
        return req.path;
      case ":method":
        return req.method;
      case ":authority":
        return req.authority;
      case ":scheme":
        return req.scheme;
    }
    return undefined;
  }
  if (name === "host") return req.authority;
  const names = req.headers.names;
  let out: string | undefined;
  for (let i = 0; i < names.length; i++) {
    if (names[i] === name) {
      out = out === undefined ? req.headers.values[i] : out + "," + req.headers.values[i];
    }
  }
  return out;
}

/** The first value of a request header (pseudo-headers included), or undefined. */
export function firstHeaderValue(req: RouteRequest, name: string): string | undefined {
  if (name.charCodeAt(0) === 58 || name === "host") return headerValue(req, name);
  return req.headers.get(name);
}

const enum H {
  String,
  Range,
  Present,
}

const INTEGER = /^[+-]?\d+$/;

/** envoy.config.route.v3.HeaderMatcher, compiled. */
export class HeaderMatch {
  #name: string;
  #kind: H;
  #string: StringMatch | undefined;
  #start = 0;
  #end = 0;
  #present = true;
  #invert: boolean;
  #missingAsEmpty: boolean;
  /** How it matches, for admin explanations: "x-a exact 'b'", "x-b present (inverted)". */
  readonly description: string;

  constructor(c: HeaderMatcherConfig) {
    this.description = describeHeaderMatcher(c);
    this.#name = c.name.toLowerCase();
    this.#invert = c.invert_match ?? false;
    this.#missingAsEmpty = c.treat_missing_header_as_empty ?? false;
    this.#kind = H.String;
    if (c.exact_match !== undefined) this.#string = StringMatch.of("exact", c.exact_match);
    else if (c.prefix_match !== undefined) this.#string = StringMatch.of("prefix", c.prefix_match);
    else if (c.suffix_match !== undefined) this.#string = StringMatch.of("suffix", c.suffix_match);
    else if (c.contains_match !== undefined) this.#string = StringMatch.of("contains", c.contains_match);
    else if (c.safe_regex_match !== undefined) this.#string = StringMatch.regex(c.safe_regex_match.regex);
    else if (c.string_match !== undefined) this.#string = StringMatch.from(c.string_match);
    else if (c.range_match !== undefined) {
      this.#kind = H.Range;
      this.#start = c.range_match.start;
      this.#end = c.range_match.end;
    } else {
      // No specifier: a presence match (present_match defaults to true).
      this.#kind = H.Present;
      this.#present = c.present_match ?? true;
    }
  }

  /** True when the request satisfies this matcher (Envoy's semantics for absent headers and inversion). */
  match(req: RouteRequest): boolean {
    let v = headerValue(req, this.#name);
    if (v === undefined) {
      if (!this.#missingAsEmpty) {
        // An absent header fails every value matcher, inverted or not; only presence checks differ.
        return this.#kind === H.Present && (this.#invert ? this.#present : !this.#present);
      }
      v = "";
    }
    let r: boolean;
    switch (this.#kind) {
      case H.Present:
        r = this.#present;
        break;
      case H.Range: {
        if (!INTEGER.test(v)) r = false;
        else {
          const n = Number(v);
          r = n >= this.#start && n < this.#end;
        }
        break;
      }
      default:
        r = this.#string!.match(v);
    }
    return r !== this.#invert;
  }
}

/**
 * The value of the first `name` parameter in the query string of `path` (which starts at `qStart`,
 * the index after "?"), "" for a key without "=", undefined when absent. Values are not decoded, as
 * Envoy's route matcher does not decode them.
 */
export function queryParamValue(path: string, qStart: number, name: string): string | undefined {
  if (qStart < 0) return undefined;
  let end = path.indexOf("#", qStart);
  if (end < 0) end = path.length;
  let i = qStart;
  while (i <= end) {
    let amp = path.indexOf("&", i);
    if (amp < 0 || amp > end) amp = end;
    if (amp > i) {
      const nl = name.length;
      if (path.startsWith(name, i)) {
        const after = i + nl;
        if (after === amp) return "";
        if (path.charCodeAt(after) === 61 /* = */) return path.slice(after + 1, amp);
      }
    }
    i = amp + 1;
  }
  return undefined;
}

/** envoy.config.route.v3.QueryParameterMatcher, compiled. */
export class QueryMatch {
  #name: string;
  #string: StringMatch | undefined;
  /** How it matches, for admin explanations: "debug exact '1'", "debug present". */
  readonly description: string;

  constructor(c: QueryParameterMatcherConfig) {
    this.description = `${c.name} ${
      c.string_match && !c.present_match ? describeStringMatcher(c.string_match) : "present"
    }`;
    this.#name = c.name;
    this.#string = c.string_match && !c.present_match ? StringMatch.from(c.string_match) : undefined;
  }

  /** True when the parameter is present (and matches the string matcher, if any). */
  match(path: string, qStart: number): boolean {
    const v = queryParamValue(path, qStart, this.#name);
    if (v === undefined) return false;
    return this.#string === undefined || this.#string.match(v);
  }
}

/** "exact 'v'", "prefix 'v' (ignore case)", "safe_regex 'x.*'": a StringMatcher in words (config time). */
export function describeStringMatcher(c: StringMatcherConfig): string {
  const ic = c.ignore_case ? " (ignore case)" : "";
  if (c.exact !== undefined) return `exact '${c.exact}'${ic}`;
  if (c.prefix !== undefined) return `prefix '${c.prefix}'${ic}`;
  if (c.suffix !== undefined) return `suffix '${c.suffix}'${ic}`;
  if (c.contains !== undefined) return `contains '${c.contains}'${ic}`;
  return `safe_regex '${c.safe_regex?.regex ?? ""}'`;
}

/** A HeaderMatcher in words (config time, once per matcher). */
function describeHeaderMatcher(c: HeaderMatcherConfig): string {
  let d: string;
  if (c.exact_match !== undefined) d = `exact '${c.exact_match}'`;
  else if (c.prefix_match !== undefined) d = `prefix '${c.prefix_match}'`;
  else if (c.suffix_match !== undefined) d = `suffix '${c.suffix_match}'`;
  else if (c.contains_match !== undefined) d = `contains '${c.contains_match}'`;
  else if (c.safe_regex_match !== undefined) d = `safe_regex '${c.safe_regex_match.regex}'`;
  else if (c.string_match !== undefined) d = describeStringMatcher(c.string_match);
  else if (c.range_match !== undefined) d = `range [${c.range_match.start}, ${c.range_match.end})`;
  else d = (c.present_match ?? true) ? "present" : "absent";
  return `${c.name.toLowerCase()} ${d}${c.invert_match ? " (inverted)" : ""}`;
}
