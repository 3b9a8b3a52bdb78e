/**
 * One Compressor config resolved for the hot path (Envoy's CompressorFilterConfig): the request and response
 * direction settings with their stats, the library factory, and the chain group that lets the compressor
 * filters of one filter chain reach one encoding decision.
 */
import type { HeaderMap } from "../../../../http/headers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter, Scope } from "../../../../stats/store.ts";
import { FeatureFlag, listHasToken } from "../../../compression/common/http_headers.ts";
import type { CompressorFactory } from "../../../compression/common/types.ts";
import { type ChainCompressor, chooseEncoding, type EncodingDecision } from "./accept_encoding.ts";
import type { CompressorConfig } from "./config.ts";

/** Envoy's response and request content types when none are configured. */
export const DEFAULT_CONTENT_TYPES: readonly string[] = [
  "text/html",
  "text/plain",
  "text/css",
  "application/javascript",
  "application/x-javascript",
  "text/javascript",
  "text/x-javascript",
  "text/ecmascript",
  "text/js",
  "text/jscript",
  "text/x-js",
  "application/ecmascript",
  "application/x-json",
  "application/xml",
  "application/json",
  "image/svg+xml",
  "text/xml",
  "application/xhtml+xml",
  "application/grpc-web",
  "application/grpc-web+proto",
];

/** Envoy's minimum content length when min_content_length is unset or 0. */
export const DEFAULT_MIN_CONTENT_LENGTH = 30;

/** A content-length value as absl::SimpleAtoi reads it. */
const DECIMAL = /^\s*\+?\d+\s*$/;

/** Transfer codings that say the body is already compressed. */
const COMPRESSED_CODINGS = ["gzip", "br", "deflate", "compress", "zstd"];

/** The content type decisions and allow-lists compare: cropped at ";", trimmed, lowercase; undefined if none. */
export function contentTypeOf(h: HeaderMap): string | undefined {
  const v = h.get("content-type");
  if (v === undefined) return undefined;
  const semi = v.indexOf(";");
  return (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase();
}

type CommonDirection = NonNullable<
  NonNullable<CompressorConfig["response_direction_config"]>["common_config"]
>;

/** Settings and stats of one direction (Envoy's DirectionConfig). */
export class DirectionSettings {
  readonly enabled: FeatureFlag;
  readonly minLength: number;
  readonly contentTypes: ReadonlySet<string>;
  readonly compressed: Counter;
  readonly notCompressed: Counter;
  readonly totalUncompressed: Counter;
  readonly totalCompressed: Counter;
  readonly tooSmall: Counter;

  constructor(c: CommonDirection | undefined, scope: Scope) {
    this.enabled = new FeatureFlag(c?.enabled);
    this.minLength = c?.min_content_length || DEFAULT_MIN_CONTENT_LENGTH;
    const types = c?.content_type.length ? c.content_type : DEFAULT_CONTENT_TYPES;
    this.contentTypes = new Set(types.map((t) => t.toLowerCase()));
    this.compressed = scope.counter("compressed");
    this.notCompressed = scope.counter("not_compressed");
    this.totalUncompressed = scope.counter("total_uncompressed_bytes");
    this.totalCompressed = scope.counter("total_compressed_bytes");
    this.tooSmall = scope.counter("content_length_too_small");
  }

  /** True without content-length or when it is at least the minimum; a smaller (or bad) one is counted. */
  isMinimumContentLength(h: HeaderMap): boolean {
    const v = h.get("content-length");
    if (v === undefined) return true;
    const n = DECIMAL.test(v) ? Number(v) : NaN;
    if (n >= this.minLength) return true;
    this.tooSmall.inc();
    return false;
  }

  /** True without a content type (`contentTypeOf`) or when it is in the allow-list. */
  isContentTypeAllowed(contentType: string | undefined): boolean {
    return contentType === undefined || this.contentTypes.has(contentType);
  }
}

/** The response-only counters (rooted without the direction prefix, as in Envoy). */
export interface ResponseStats {
  readonly no_accept_header: Counter;
  readonly header_identity: Counter;
  readonly header_compressor_used: Counter;
  readonly header_compressor_overshadowed: Counter;
  readonly header_wildcard: Counter;
  readonly header_not_valid: Counter;
  readonly not_compressed_etag: Counter;
}

/**
 * The compressor filters of one filter chain in filter order, and their decisions by (content type,
 * accept-encoding). Built from the first stream's filters: every factory of a chain makes a filter for every
 * stream, in chain order, in one synchronous pass.
 */
export class ChainGroup {
  readonly members: CompressorSettings[] = [];
  #chain: ChainCompressor[] | null = null;
  readonly #cache = new Map<string, Map<string, EncodingDecision>>();
  #cached = 0;

  /** The decision for a response of content type `contentType` to a request accepting `acceptEncoding`. */
  decide(acceptEncoding: string, contentType: string): EncodingDecision {
    let byAe = this.#cache.get(contentType);
    let d = byAe?.get(acceptEncoding);
    if (d !== undefined) return d;
    d = chooseEncoding(acceptEncoding, contentType, this.#chain ??= this.members.map((m) => m.chain));
    if (++this.#cached > 1024) {
      // clients send a handful of distinct headers; a flood of made-up ones must not grow this
      this.#cache.clear();
      this.#cached = 1;
      byAe = undefined;
    }
    if (byAe === undefined) this.#cache.set(contentType, byAe = new Map());
    byAe.set(acceptEncoding, d);
    return d;
  }
}

let joining: { owner: WeakRef<object>; group: ChainGroup } | null = null;

/** The chain group of the stream `owner` whose filters are being created (a new group for a new stream). */
export function groupOf(owner: object): ChainGroup {
  if (joining !== null && joining.owner.deref() === owner) return joining.group;
  const group = new ChainGroup();
  joining = { owner: new WeakRef(owner), group };
  return group;
}

/** One Compressor config, resolved. */
export class CompressorSettings {
  readonly library: CompressorFactory;
  readonly encoding: string;
  readonly request: DirectionSettings;
  /** request_direction_config is present (request compression is off without it). */
  readonly requestSet: boolean;
  readonly response: DirectionSettings;
  readonly responseStats: ResponseStats;
  readonly disableOnEtag: boolean;
  readonly removeAcceptEncoding: boolean;
  readonly uncompressibleCodes: ReadonlySet<number>;
  readonly chain: ChainCompressor;
  group: ChainGroup | null = null;

  constructor(c: CompressorConfig, ctx: FactoryContext, statPrefix: string) {
    const lib = c.compressor_library;
    this.library = (lib.ext.create as (config: unknown) => CompressorFactory)(lib.config);
    this.encoding = this.library.contentEncoding;
    const root = ctx.stats.scope(`http.${statPrefix}.compressor.${lib.name}.${this.library.statsPrefix}`);
    const r = c.response_direction_config;
    this.request = new DirectionSettings(c.request_direction_config?.common_config, root.scope("request"));
    this.requestSet = c.request_direction_config !== undefined;
    // without response_direction_config the deprecated top-level fields apply and stats have no "response."
    this.response = r
      ? new DirectionSettings(r.common_config, root.scope("response"))
      : new DirectionSettings(
        { enabled: c.runtime_enabled, min_content_length: c.content_length, content_type: c.content_type },
        root,
      );
    this.disableOnEtag = r ? r.disable_on_etag_header : c.disable_on_etag_header;
    this.removeAcceptEncoding = r ? r.remove_accept_encoding_header : c.remove_accept_encoding_header;
    this.uncompressibleCodes = new Set(r?.uncompressible_response_codes ?? []);
    this.responseStats = {
      no_accept_header: root.counter("no_accept_header"),
      header_identity: root.counter("header_identity"),
      header_compressor_used: root.counter("header_compressor_used"),
      header_compressor_overshadowed: root.counter("header_compressor_overshadowed"),
      header_wildcard: root.counter("header_wildcard"),
      header_not_valid: root.counter("header_not_valid"),
      not_compressed_etag: root.counter("not_compressed_etag"),
    };
    this.chain = {
      encoding: this.encoding,
      chooseFirst: c.choose_first,
      contentTypes: this.response.contentTypes,
    };
  }

  /** False when transfer-encoding says the message is already compressed (a known coding or this library's). */
  isTransferEncodingAllowed(h: HeaderMap): boolean {
    const names = h.names;
    for (let i = 0; i < names.length; i++) {
      if (names[i] !== "transfer-encoding") continue;
      const v = h.values[i];
      for (const coding of COMPRESSED_CODINGS) if (listHasToken(v, coding)) return false;
      if (listHasToken(v, this.encoding.toLowerCase())) return false;
    }
    return true;
  }

  /** False (and counted) when disable_on_etag_header is set and the response has an etag. */
  isEtagAllowed(h: HeaderMap): boolean {
    if (!this.disableOnEtag || !h.has("etag")) return true;
    this.responseStats.not_compressed_etag.inc();
    return false;
  }
}
