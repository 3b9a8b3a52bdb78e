/**
 * envoy.filters.http.header_to_metadata: turns request (and response) header or cookie values into the stream's
 * dynamic metadata, as Envoy: a rule whose header is present sets its on_header_present pair (the configured value,
 * else the header's, rewritten by regex_value_rewrite), a missing one sets on_header_missing; `remove` drops the
 * header. Values are STRING, NUMBER or PROTOBUF_VALUE (a serialized google.protobuf.Value), optionally BASE64.
 * Metadata in `envoy.lb` feeds the subset load balancer (the router merges it over the route's metadata_match).
 * The most specific per-route config replaces the filter's. Stats only with stat_prefix:
 * `http_filter_name.<stat_prefix>.*`.
 */
import { setDynamicMetadata } from "../../../../common/metadata_match.ts";
import type {
  HttpFilter,
  HttpFilterCallbacks,
  HttpFilterFactory,
  HttpResponse,
} from "../../../../http/filter.ts";
import { HttpFilterStatus } from "../../../../http/filter.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import { headerValue } from "../../../../http/routing/matchers.ts";
import { compileGlobal, groupCount, translateSubstitution } from "../../../../http/routing/regex.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter } from "../../../../stats/store.ts";
import { perRouteConfig } from "../../common/config.ts";
import type { HeaderToMetadataConfig, KeyValuePairConfig, RuleConfig } from "./config.ts";
import { decodeProtobufValue } from "./protobuf_value.ts";

/** The canonical extension name: the default typed_per_filter_config key and metadata namespace. */
export const HEADER_TO_METADATA_NAME = "envoy.filters.http.header_to_metadata";

/** Envoy's MAX_HEADER_VALUE_LEN: longer values are not added. */
const MAX_VALUE_LEN = 8 * 1024;

const STAT_NAMES = [
  "request_rules_processed",
  "response_rules_processed",
  "request_metadata_added",
  "response_metadata_added",
  "request_header_not_found",
  "response_header_not_found",
  "base64_decode_failed",
  "header_value_too_long",
  "regex_substitution_failed",
] as const;

type Stats = Record<(typeof STAT_NAMES)[number], Counter>;

/** Which way the headers go (selects the request_* or response_* counters). */
const enum Dir {
  Request,
  Response,
}

const enum Type {
  String,
  Number,
  ProtobufValue,
}

const TYPES = { STRING: Type.String, NUMBER: Type.Number, PROTOBUF_VALUE: Type.ProtobufValue } as const;

/** A KeyValuePair, compiled. */
class Pair {
  readonly ns: string;
  readonly key: string;
  readonly value: string;
  readonly type: Type;
  readonly base64: boolean;
  constructor(c: KeyValuePairConfig) {
    this.ns = c.metadata_namespace || HEADER_TO_METADATA_NAME;
    this.key = c.key;
    this.value = c.value;
    this.type = TYPES[c.type];
    this.base64 = c.encode === "BASE64";
  }
}

/** A Rule, compiled. */
class Rule {
  /** Lowercase header name ("" for a cookie rule). */
  readonly header: string;
  readonly cookie: string;
  readonly remove: boolean;
  readonly present: Pair | null;
  readonly missing: Pair | null;
  readonly re: RegExp | null = null;
  readonly sub: string = "";
  constructor(c: RuleConfig) {
    this.header = c.header.toLowerCase();
    this.cookie = c.cookie;
    this.remove = c.remove;
    this.present = c.on_header_present ? new Pair(c.on_header_present) : null;
    this.missing = c.on_header_missing ? new Pair(c.on_header_missing) : null;
    const rw = c.on_header_present?.regex_value_rewrite;
    if (rw !== undefined) {
      this.re = compileGlobal(rw.pattern.regex);
      this.sub = translateSubstitution(rw.substitution, groupCount(this.re));
    }
  }
}

/** One Config (the filter's or a route's), compiled with its stats. */
export class CompiledConfig {
  readonly request: readonly Rule[];
  readonly response: readonly Rule[];
  readonly stats: Stats | null = null;
  constructor(c: HeaderToMetadataConfig, ctx: FactoryContext) {
    this.request = c.request_rules.map((r) => new Rule(r));
    this.response = c.response_rules.map((r) => new Rule(r));
    if (c.stat_prefix !== "") {
      const scope = ctx.stats.scope(`http_filter_name.${c.stat_prefix}`);
      const s = {} as Stats;
      for (const n of STAT_NAMES) s[n] = scope.counter(n);
      this.stats = s;
    }
  }
}

/** The per-HCM factory: the filter's config, route configs compiled on first use. */
export class HeaderToMetadataFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly config: CompiledConfig;
  readonly #perRoute = new WeakMap<object, CompiledConfig>();
  constructor(config: HeaderToMetadataConfig, readonly ctx: FactoryContext, readonly name: string) {
    this.config = new CompiledConfig(config, ctx);
  }

  /** The most specific config for the stream's route (the route's replaces the filter's). */
  configFor(cb: HttpFilterCallbacks): CompiledConfig {
    const pfc = perRouteConfig(cb, this.name);
    if (pfc === undefined) return this.config;
    let c = this.#perRoute.get(pfc);
    if (c === undefined) {
      this.#perRoute.set(pfc, c = new CompiledConfig(pfc.config as HeaderToMetadataConfig, this.ctx));
    }
    return c;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new HeaderToMetadataFilter(this, cb);
  }
}

class HeaderToMetadataFilter implements HttpFilter {
  #config: CompiledConfig | null = null;
  constructor(readonly f: HeaderToMetadataFactory, readonly cb: HttpFilterCallbacks) {}

  #effective(): CompiledConfig {
    return this.#config ??= this.f.configFor(this.cb);
  }

  decodeHeaders(_endStream: boolean): HttpFilterStatus {
    const c = this.#effective();
    if (c.request.length > 0) this.#write(c, c.request, Dir.Request, null);
    return HttpFilterStatus.Continue;
  }

  encodeHeaders(res: HttpResponse, _endStream: boolean): HttpFilterStatus {
    const c = this.#effective();
    if (c.response.length > 0) this.#write(c, c.response, Dir.Response, res);
    return HttpFilterStatus.Continue;
  }

  /** Envoy's writeHeaderToMetadata over the request (`res` null) or response headers. */
  #write(c: CompiledConfig, rules: readonly Rule[], dir: Dir, res: HttpResponse | null): void {
    const s = c.stats;
    const req = this.cb.request;
    const headers = res === null ? req.headers : res.headers;
    let out: Record<string, Record<string, unknown>> | null = null;
    for (const r of rules) {
      let value: string | undefined;
      if (r.header !== "") {
        value = res === null ? headerValue(req, r.header) : responseValue(res, r.header);
        if (value !== undefined && r.remove && r.header.charCodeAt(0) !== 58 /* : */) {
          headers.remove(r.header);
        }
      } else value = cookieValue(headers, r.cookie);
      if (s !== null) (dir === Dir.Request ? s.request_rules_processed : s.response_rules_processed).inc();
      if (value !== undefined && r.present !== null) {
        out = this.#apply(c, value, r, r.present, dir, out);
      } else if (value === undefined && r.missing !== null) {
        if (s !== null) {
          (dir === Dir.Request ? s.request_header_not_found : s.response_header_not_found).inc();
        }
        out = this.#apply(c, "", r, r.missing, dir, out);
      }
    }
    if (out === null) return;
    const info = this.cb.streamInfo;
    for (const ns in out) info.dynamicMetadata = setDynamicMetadata(info.dynamicMetadata, ns, out[ns]);
  }

  /** applyKeyValue: the pair's value, else the header's (rewritten); adds it unless empty. */
  #apply(
    c: CompiledConfig,
    value: string,
    r: Rule,
    p: Pair,
    dir: Dir,
    out: Record<string, Record<string, unknown>> | null,
  ): Record<string, Record<string, unknown>> | null {
    if (p.value !== "") value = p.value;
    else if (r.re !== null) {
      const had = value !== "";
      r.re.lastIndex = 0;
      value = value.replace(r.re, r.sub);
      if (had && value === "") c.stats?.regex_substitution_failed.inc();
    }
    if (value === "") return out;
    const v = toValue(c, value, p);
    if (v === NO_VALUE) return out;
    out ??= {};
    (out[p.ns] ??= {})[p.key] = v;
    if (c.stats !== null) {
      (dir === Dir.Request ? c.stats.request_metadata_added : c.stats.response_metadata_added).inc();
    }
    return out;
  }
}

/** Marks a value that could not be converted (nothing is added). */
const NO_VALUE = Symbol("no value");

/** Envoy's addMetadata conversion: length limit, BASE64, then the type. */
function toValue(c: CompiledConfig, value: string, p: Pair): unknown {
  if (value.length >= MAX_VALUE_LEN) {
    c.stats?.header_value_too_long.inc();
    return NO_VALUE;
  }
  let bytes: Uint8Array | null = null;
  if (p.base64) {
    bytes = decodeBase64(value);
    if (bytes === null || bytes.length === 0) {
      c.stats?.base64_decode_failed.inc();
      return NO_VALUE;
    }
  }
  switch (p.type) {
    case Type.String:
      return bytes === null ? value : utf8.decode(bytes);
    case Type.Number: {
      const n = parseNumber((bytes === null ? value : utf8.decode(bytes)).trim());
      return n === undefined ? NO_VALUE : n;
    }
    case Type.ProtobufValue: {
      const b = bytes ?? latin1(value);
      try {
        return decodeProtobufValue(b);
      } catch {
        return NO_VALUE;
      }
    }
  }
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const SIGN = /^[+-]/;
const utf8 = new TextDecoder();

/** absl::SimpleAtod: decimal or exponent notation, inf/infinity/nan in any case; undefined otherwise. */
function parseNumber(s: string): number | undefined {
  if (NUMBER.test(s)) return Number(s);
  const l = s.toLowerCase().replace(SIGN, "");
  const neg = s.startsWith("-");
  if (l === "inf" || l === "infinity") return neg ? -Infinity : Infinity;
  if (l === "nan") return NaN;
  return undefined;
}

/** Base64 with or without padding (Envoy's decodeWithoutPadding); null when invalid. */
function decodeBase64(s: string): Uint8Array | null {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    return null;
  }
  return latin1(bin);
}

/** The bytes of a binary string (one char per byte). */
function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** A response header's value (`:status` included), several lines joined with ","; undefined when absent. */
function responseValue(res: HttpResponse, name: string): string | undefined {
  if (name === ":status") return String(res.status);
  const h = res.headers;
  let out: string | undefined;
  for (let i = 0; i < h.names.length; i++) {
    if (h.names[i] === name) out = out === undefined ? h.values[i] : out + "," + h.values[i];
  }
  return out;
}

/** Envoy's parseCookieValue: the first `name=value` of the cookie headers, quotes stripped; undefined if empty. */
function cookieValue(headers: HeaderMap, name: string): string | undefined {
  for (let i = 0; i < headers.names.length; i++) {
    if (headers.names[i] !== "cookie") continue;
    for (const part of headers.values[i].split(";")) {
      const p = part.trim();
      const eq = p.indexOf("=");
      if (eq < 0 || p.slice(0, eq) !== name) continue;
      let v = p.slice(eq + 1);
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v === "" ? undefined : v;
    }
  }
  return undefined;
}
