/**
 * envoy.filters.http.compressor: compresses response bodies for clients whose accept-encoding asks for the
 * library's coding (and, with request_direction_config, request bodies), as Envoy's CompressorFilter does:
 * streamed chunk by chunk with a flush after each, content-length removed, content-encoding set, strong etags
 * dropped, `vary: Accept-Encoding` added to every compressible response. Several compressor filters in one
 * chain agree on one encoding by q-value (accept_encoding.ts). Per route: CompressorPerRoute.
 */
import { Logger } from "../../../../common/log.ts";
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
import { hasNoTransform, isUpgrade, joined } from "../../../compression/common/http_headers.ts";
import type { Compressor } from "../../../compression/common/types.ts";
import { perRouteConfig } from "../../common/config.ts";
import { type EncodingDecision, HeaderStat } from "./accept_encoding.ts";
import type { CompressorConfig, CompressorRouteSettings } from "./config.ts";
import { CompressorSettings, contentTypeOf, groupOf } from "./settings.ts";

/** The canonical extension name (the default typed_per_filter_config key). */
export const COMPRESSOR_NAME = "envoy.filters.http.compressor";

const EMPTY = new Uint8Array(0);
const VARY_VALUE = "Accept-Encoding";
const log = new Logger("filter");

/** The per-HCM factory of one compressor filter. */
export class CompressorFilterFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly s: CompressorSettings;

  constructor(config: CompressorConfig, ctx: FactoryContext, readonly name: string, statPrefix: string) {
    this.s = new CompressorSettings(config, ctx, statPrefix);
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    const s = this.s;
    if (s.group === null) (s.group = groupOf(cb)).members.push(s);
    return new CompressorFilter(this, cb);
  }

  /** The snapshot is retired: pooled library state is freed. */
  close(): void {
    this.s.library.close();
  }
}

class CompressorFilter implements HttpFilter {
  #acceptEncoding: string | undefined;
  // A compressed direction takes its compressor only at its first body bytes: a response whose body is still on
  // its way holds no zlib state (256 KiB at window_bits 15), and a one-chunk body takes and returns a pooled one.
  #requestOn = false;
  #request: Compressor | null = null;
  #responseOn = false;
  #response: Compressor | null = null;
  constructor(readonly f: CompressorFilterFactory, readonly cb: HttpFilterCallbacks) {}

  #route(): CompressorRouteSettings | undefined {
    return perRouteConfig(this.cb, this.f.name)?.config as CompressorRouteSettings | undefined;
  }

  #responseEnabled(route: CompressorRouteSettings | undefined): boolean {
    return route?.responseEnabled ?? this.f.s.response.enabled.enabled();
  }

  decodeHeaders(endStream: boolean): HttpFilterStatus {
    const s = this.f.s;
    const req = this.cb.request;
    const h = req.headers;
    this.#acceptEncoding = joined(h, "accept-encoding");
    const route = this.#route();
    if (this.#responseEnabled(route) && (route?.removeAcceptEncoding ?? s.removeAcceptEncoding)) {
      h.remove("accept-encoding");
    }
    const rq = s.request;
    if (
      !endStream && s.requestSet && rq.enabled.enabled() && !isUpgrade(h) && rq.isMinimumContentLength(h) &&
      rq.isContentTypeAllowed(contentTypeOf(h)) && !h.has("content-encoding") &&
      s.isTransferEncodingAllowed(h)
    ) {
      h.remove("content-length");
      req.contentLength = -1;
      h.set("content-encoding", s.encoding);
      rq.compressed.inc();
      this.#requestOn = true;
    } else {
      rq.notCompressed.inc();
    }
    return HttpFilterStatus.Continue;
  }

  decodeData(data: Uint8Array, endStream: boolean): HttpFilterDataResult {
    if (!this.#requestOn || (data.length === 0 && !endStream)) return HttpFilterStatus.Continue;
    const c = this.#request ??= this.f.s.library.create();
    const rq = this.f.s.request;
    rq.totalUncompressed.inc(data.length);
    const out = c.compress(data, endStream);
    rq.totalCompressed.inc(out.length);
    if (endStream) this.#releaseRequest();
    return out;
  }

  decodeTrailers(_trailers: HeaderMap): HttpFilterDataResult {
    // trailers end the body: the compressed stream is finished before them (Envoy's addDecodedData)
    if (!this.#requestOn) return HttpFilterStatus.Continue;
    const c = this.#request ??= this.f.s.library.create();
    const out = c.compress(EMPTY, true);
    this.f.s.request.totalCompressed.inc(out.length);
    this.#releaseRequest();
    return out;
  }

  encodeHeaders(res: HttpResponse, endStream: boolean): HttpFilterStatus {
    const s = this.f.s;
    const h = res.headers;
    const rs = s.response;
    const status = res.status;
    // a response that has no body here ends with its headers (Envoy's codec says end_stream)
    const noBody = endStream || status < 200 || status === 204 || status === 304 ||
      this.cb.request.method === "HEAD";
    const ct = contentTypeOf(h);
    const enabledAndBigEnough = this.#responseEnabled(this.#route()) && rs.isMinimumContentLength(h);
    const compressible = enabledAndBigEnough && status !== 101 && !isUpgrade(h) &&
      !s.uncompressibleCodes.has(status) &&
      rs.isContentTypeAllowed(ct) && !hasNoTransform(h) && s.isEtagAllowed(h) && !h.has("content-encoding");
    if (
      !noBody && this.#acceptEncodingAllowed(enabledAndBigEnough, ct) && compressible &&
      s.isTransferEncodingAllowed(h)
    ) {
      sanitizeEtag(h);
      h.remove("content-length");
      h.set("content-encoding", s.encoding);
      rs.compressed.inc();
      this.#responseOn = true;
    } else {
      rs.notCompressed.inc();
    }
    // even when this client gets identity, a cache in front must know the resource has compressed variants
    if (compressible) insertVary(h);
    if (log.enabled("debug")) {
      log.debug(
        `${this.cb.streamInfo.logPrefix()}compressor (${this.f.name}): ` +
          (this.#responseOn ? `compressing the response with ${s.encoding}` : "response not compressed"),
      );
    }
    return HttpFilterStatus.Continue;
  }

  encodeData(data: Uint8Array, endStream: boolean): HttpFilterDataResult {
    // an empty chunk that does not end the body only flushes the head: nothing to compress
    if (!this.#responseOn || (data.length === 0 && !endStream)) return HttpFilterStatus.Continue;
    const c = this.#response ??= this.f.s.library.create();
    const rs = this.f.s.response;
    rs.totalUncompressed.inc(data.length);
    const out = c.compress(data, endStream);
    rs.totalCompressed.inc(out.length);
    if (endStream) this.#releaseResponse();
    return out;
  }

  encodeTrailers(_trailers: HeaderMap): HttpFilterDataResult {
    // trailers end the body: the compressed stream is finished before them (Envoy's addEncodedData)
    if (!this.#responseOn) return HttpFilterStatus.Continue;
    const c = this.#response ??= this.f.s.library.create();
    const out = c.compress(EMPTY, true);
    this.f.s.response.totalCompressed.inc(out.length);
    this.#releaseResponse();
    return out;
  }

  onDestroy(): void {
    this.#releaseRequest();
    this.#releaseResponse();
  }

  #releaseRequest(): void {
    this.#requestOn = false;
    this.#request?.release();
    this.#request = null;
  }

  #releaseResponse(): void {
    this.#responseOn = false;
    this.#response?.release();
    this.#response = null;
  }

  /**
   * Envoy's isAcceptEncodingAllowed: whether the chain's decision for this request and response picked this
   * filter's encoding; counts the accept-encoding stats. Skipped (nothing counted) when compression is off or
   * the response is too small.
   */
  #acceptEncodingAllowed(maybeCompress: boolean, contentType: string | undefined): boolean {
    if (!maybeCompress) return false;
    const s = this.f.s;
    const ae = this.#acceptEncoding;
    if (ae === undefined) {
      s.responseStats.no_accept_header.inc();
      return false;
    }
    return shouldCompress(s, s.group!.decide(ae, contentType ?? ""));
  }
}

/** Whether `d` picked this filter's encoding; counts the stat the decision carries. */
function shouldCompress(s: CompressorSettings, d: EncodingDecision): boolean {
  const should = d.encoding.toLowerCase() === s.encoding.toLowerCase();
  const st = s.responseStats;
  switch (d.stat) {
    case HeaderStat.ValidCompressor:
      (should ? st.header_compressor_used : st.header_compressor_overshadowed).inc();
      break;
    case HeaderStat.Identity:
      st.header_identity.inc();
      break;
    case HeaderStat.Wildcard:
      st.header_wildcard.inc();
      break;
    default:
      st.header_not_valid.inc();
  }
  return should;
}

/** Drops a strong etag (the compressed body is a different representation); weak ones stay, as in Envoy. */
function sanitizeEtag(h: HeaderMap): void {
  const etag = h.get("etag");
  if (etag !== undefined && etag.length > 2 && !((etag[0] === "W" || etag[0] === "w") && etag[1] === "/")) {
    h.remove("etag");
  }
}

/** Adds Accept-Encoding to vary unless a vary token already says it (Envoy's exact, trimmed token match). */
function insertVary(h: HeaderMap): void {
  const vary = joined(h, "vary");
  if (vary === undefined) {
    h.addLower("vary", VARY_VALUE);
    return;
  }
  for (const t of vary.split(",")) if (t.trim() === VARY_VALUE) return;
  h.set("vary", `${vary}, ${VARY_VALUE}`);
}
