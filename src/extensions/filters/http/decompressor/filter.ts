/**
 * envoy.filters.http.decompressor: decompresses request and response bodies whose content-encoding starts with
 * the library's coding, chunk by chunk (Envoy's DecompressorFilter): content-length removed, that coding taken
 * off content-encoding, and, while response decompression is on, the coding advertised upstream in
 * accept-encoding. Skipped for cache-control no-transform unless ignore_no_transform_header.
 *
 * Not done: the byte-count trailers Envoy adds at the end of a decompressed body
 * (`x-envoy-decompressor-<library>-{compressed,uncompressed}-bytes`); the counters have the same totals.
 */
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterDataResult,
  type HttpFilterFactory,
  HttpFilterStatus,
  type HttpResponse,
} from "../../../../http/filter.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter, Scope } from "../../../../stats/store.ts";
import { FeatureFlag, hasNoTransform, joined } from "../../../compression/common/http_headers.ts";
import type {
  Decompressor,
  DecompressorFactory,
  DecompressorLibraryStats,
} from "../../../compression/common/types.ts";
import type { DecompressorConfig } from "./config.ts";

/** The extension name. */
export const DECOMPRESSOR_NAME = "envoy.filters.http.decompressor";

type CommonDirection = NonNullable<
  NonNullable<DecompressorConfig["response_direction_config"]>["common_config"]
>;

/** One direction's settings and counters. */
class Direction {
  readonly enabled: FeatureFlag;
  readonly ignoreNoTransform: boolean;
  readonly decompressed: Counter;
  readonly notDecompressed: Counter;
  readonly totalUncompressed: Counter;
  readonly totalCompressed: Counter;
  constructor(c: CommonDirection | undefined, scope: Scope) {
    this.enabled = new FeatureFlag(c?.enabled);
    this.ignoreNoTransform = c?.ignore_no_transform_header ?? false;
    this.decompressed = scope.counter("decompressed");
    this.notDecompressed = scope.counter("not_decompressed");
    this.totalUncompressed = scope.counter("total_uncompressed_bytes");
    this.totalCompressed = scope.counter("total_compressed_bytes");
  }
}

/** The per-HCM factory of one decompressor filter. */
export class DecompressorFilterFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly library: DecompressorFactory;
  readonly encoding: string;
  readonly request: Direction;
  readonly response: Direction;
  readonly advertise: boolean;
  readonly libraryStats: DecompressorLibraryStats;

  constructor(config: DecompressorConfig, ctx: FactoryContext, statPrefix: string) {
    const lib = config.decompressor_library;
    this.library = (lib.ext.create as (config: unknown) => DecompressorFactory)(lib.config);
    this.encoding = this.library.contentEncoding.toLowerCase();
    const root = ctx.stats.scope(`http.${statPrefix}.decompressor.${lib.name}.${this.library.statsPrefix}`);
    const rq = config.request_direction_config;
    this.request = new Direction(rq?.common_config, root.scope("request"));
    this.response = new Direction(config.response_direction_config?.common_config, root.scope("response"));
    this.advertise = rq?.advertise_accept_encoding ?? true;
    this.libraryStats = this.library.stats(root.scope("decompressor_library"));
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new DecompressorFilter(this, cb);
  }

  /** The snapshot is retired: pooled library state is freed. */
  close(): void {
    this.library.close();
  }

  /** Envoy's maybeInitDecompress: a decompressor when the direction is on and the coding matches, else null. */
  start(d: Direction, h: HeaderMap): Decompressor | null {
    if (!d.enabled.enabled() || (!d.ignoreNoTransform && hasNoTransform(h)) || !this.#codingMatches(h)) {
      d.notDecompressed.inc();
      return null;
    }
    d.decompressed.inc();
    h.remove("content-length");
    dropFirstCoding(h);
    return this.library.create(this.libraryStats);
  }

  /** The first coding of content-encoding is this library's (case-insensitive, trimmed). */
  #codingMatches(h: HeaderMap): boolean {
    const ce = joined(h, "content-encoding");
    if (ce === undefined) return false;
    const comma = ce.indexOf(",");
    return (comma < 0 ? ce : ce.slice(0, comma)).trim().toLowerCase() === this.encoding;
  }
}

class DecompressorFilter implements HttpFilter {
  #request: Decompressor | null = null;
  #response: Decompressor | null = null;
  constructor(readonly f: DecompressorFilterFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(endStream: boolean): HttpFilterStatus {
    const f = this.f;
    const req = this.cb.request;
    const h = req.headers;
    if (f.advertise && f.response.enabled.enabled()) {
      h.set(
        "accept-encoding",
        addEncodingToAcceptEncoding(joined(h, "accept-encoding") ?? "", f.library.contentEncoding),
      );
    }
    if (endStream) return HttpFilterStatus.Continue;
    this.#request = f.start(f.request, h);
    if (this.#request !== null) req.contentLength = -1;
    return HttpFilterStatus.Continue;
  }

  decodeData(data: Uint8Array, endStream: boolean): HttpFilterDataResult {
    const d = this.#request;
    if (d === null || (data.length === 0 && !endStream)) return HttpFilterStatus.Continue;
    const out = count(this.f.request, data, d.decompress(data));
    if (endStream) this.#releaseRequest();
    return out;
  }

  decodeTrailers(_trailers: HeaderMap): HttpFilterStatus {
    this.#releaseRequest();
    return HttpFilterStatus.Continue;
  }

  encodeHeaders(res: HttpResponse, endStream: boolean): HttpFilterStatus {
    const status = res.status;
    // a response without a body ends with its headers (Envoy's codec says end_stream): nothing is counted
    if (endStream || status < 200 || status === 204 || status === 304 || this.cb.request.method === "HEAD") {
      return HttpFilterStatus.Continue;
    }
    this.#response = this.f.start(this.f.response, res.headers);
    return HttpFilterStatus.Continue;
  }

  encodeData(data: Uint8Array, endStream: boolean): HttpFilterDataResult {
    const d = this.#response;
    if (d === null || (data.length === 0 && !endStream)) return HttpFilterStatus.Continue;
    const out = count(this.f.response, data, d.decompress(data));
    if (endStream) this.#releaseResponse();
    return out;
  }

  encodeTrailers(_trailers: HeaderMap): HttpFilterStatus {
    this.#releaseResponse();
    return HttpFilterStatus.Continue;
  }

  onDestroy(): void {
    this.#releaseRequest();
    this.#releaseResponse();
  }

  #releaseRequest(): void {
    this.#request?.release();
    this.#request = null;
  }

  #releaseResponse(): void {
    this.#response?.release();
    this.#response = null;
  }
}

/** Adds one chunk's sizes to the direction's byte counters; returns `out`. */
function count(d: Direction, input: Uint8Array, out: Uint8Array): Uint8Array {
  d.totalCompressed.inc(input.length);
  d.totalUncompressed.inc(out.length);
  return out;
}

/** Takes the first coding off content-encoding (the header goes when it was the only one). */
function dropFirstCoding(h: HeaderMap): void {
  const all = joined(h, "content-encoding")!.trim();
  const comma = all.indexOf(",");
  if (comma < 0) h.remove("content-encoding");
  else h.set("content-encoding", all.slice(comma + 1).trim());
}

/**
 * Envoy's HeaderUtility::addEncodingToAcceptEncoding: the other codings kept as they were (empty ones dropped),
 * `encoding` once at the end without a q-value.
 */
export function addEncodingToAcceptEncoding(header: string, encoding: string): string {
  const out: string[] = [];
  for (const part of header.split(",")) {
    const token = part.trim();
    if (token === "") continue;
    const semi = token.indexOf(";");
    if ((semi < 0 ? token : token.slice(0, semi)).trim() !== encoding) out.push(token);
  }
  out.push(encoding);
  return out.join(",");
}
