/**
 * HTTP filters (Envoy's L7 chain): decode* run in configuration order, encode* in reverse; the router is
 * terminal. A filter may answer locally with `sendLocalReply` and return StopIteration.
 */
import type { StreamInfo } from "../common/stream_info.ts";
import type { MetadataMatchCriteria } from "../common/metadata_match.ts";
import type { FactoryContext } from "../network/filter.ts";
import type { HeaderMap } from "./headers.ts";
import type { HcmTracing } from "../tracing/http_tracing.ts";
import type { Span } from "../tracing/types.ts";
import type { RouteContext, RouteEntry } from "./routing/types.ts";

/** A request head as filters see it (pseudo-headers as fields). */
export interface HttpRequest {
  method: string;
  /** Path with query, after normalization. */
  path: string;
  /** Host / :authority. */
  authority: string;
  /** "http" or "https". */
  scheme: string;
  /** "HTTP/1.0", "HTTP/1.1" or "HTTP/2". */
  protocol: string;
  headers: HeaderMap;
  /** Body length if known (content-length), -1 for chunked/unknown, 0 when none. */
  contentLength: number;
}

/** A response head. */
export interface HttpResponse {
  status: number;
  headers: HeaderMap;
}

/**
 * What a filter tells the chain after each call. StopIterationAndBuffer (decodeHeaders/decodeData): later filters
 * see nothing yet and the stream buffers the request body (up to the decoder buffer limit, else 413) until this
 * filter returns Continue from decodeData or decodeTrailers; then later filters get the headers, the whole
 * buffered body in one decodeData call, and the trailers.
 */
export const HttpFilterStatus = { Continue: 0, StopIteration: 1, StopIterationAndBuffer: 2 } as const;
/** One of HttpFilterStatus. */
export type HttpFilterStatus = typeof HttpFilterStatus[keyof typeof HttpFilterStatus];

/**
 * The settled promise that encode calls (`encodeHeaders`/`encodeData`/`encodeTrailers` of a stream and of the
 * codecs) return when they finished synchronously: any caller may await it, and a hot caller that compares
 * against it skips the await (a microtask and its allocations per call).
 */
export const DONE: Promise<void> = Promise.resolve();

/** Options of a local reply. */
export interface LocalReplyOptions {
  /** ResponseFlag bits to set. */
  flags?: number;
  /** response_code_details, e.g. "route_not_found". */
  details?: string;
  /** Extra response headers. */
  headers?: [string, string][];
  /** gRPC status to use when the request is gRPC (later). */
  grpcStatus?: number;
}

/** What the connection manager offers to each filter of a stream. */
export interface HttpFilterCallbacks {
  /** Facts about this stream (flags, bytes, upstream host, ...). */
  readonly streamInfo: StreamInfo;
  /** The request head (mutable by decoder filters before the router runs). */
  readonly request: HttpRequest;
  /** Downstream peer IP (after x-forwarded-for handling). */
  readonly remoteIp: string;
  /** True when the request is internal (x-envoy-internal semantics). */
  readonly internal: boolean;
  /** The matched route (cached; recomputed after clearRouteCache). */
  route(): RouteEntry | null;
  /**
   * The cluster name the route picked (weighted and cluster_header picks are made once, with the route), ""
   * without a route; it may name no cluster. `streamInfo.upstreamCluster` is set only when it exists.
   */
  readonly routeClusterName: string;
  /**
   * The metadata_match criteria (`envoy.lb`) of the route and the weighted cluster picked with it, null when none
   * (absent: the same). The router merges the request's `envoy.lb` dynamic metadata over them.
   */
  readonly routeMetadataMatch?: MetadataMatchCriteria | null;
  /** Context for route header formatters and hash policies. */
  routeContext(): RouteContext;
  /** The accepted upgrade type of this request (e.g. "websocket"), "" when not an upgrade. */
  readonly upgradeType: string;
  /** Forgets the cached route so the next route() matches again (after a filter changed headers). */
  clearRouteCache(): void;
  /** Answers the request locally through the encode filters; the stream ends after it. */
  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): Promise<void>;
  /** Sends response headers downstream through the encoder filters. */
  encodeHeaders(res: HttpResponse, endStream: boolean): Promise<void>;
  /** Sends response body bytes downstream through the encoder filters (resolves when written: backpressure). */
  encodeData(data: Uint8Array, endStream: boolean): Promise<void>;
  /** Sends response trailers downstream (HTTP/1.1 chunked trailers). */
  encodeTrailers(trailers: HeaderMap): Promise<void>;
  /** True once response headers went downstream. */
  readonly responseStarted: boolean;
  /** Aborts the stream (closes the downstream connection for HTTP/1.1). */
  resetStream(): void;
  /** Sets how many request body bytes StopIterationAndBuffer may hold (default: the connection's buffer limit). */
  setDecoderBufferLimit?(bytes: number): void;
  /** The request's span (null or absent when not traced): the router injects its context upstream. */
  readonly activeSpan?: Span | null;
  /** The connection manager's tracing (null or absent when not configured): upstream spans. */
  readonly tracing?: HcmTracing | null;
}

/**
 * What decodeData/encodeData/encodeTrailers may return besides a status: bytes that replace the chunk for the
 * later filters and the codec (same endStream; from the filter holding the response, they replace the whole
 * held body). From encodeTrailers: body bytes sent before the trailers (Envoy's addEncodedData); when the
 * filter emptied the trailers, the stream ends with those bytes and no trailers.
 */
export type HttpFilterDataResult = HttpFilterStatus | Uint8Array;

/** A per-stream HTTP filter. Every method is optional; a missing one means Continue. */
export interface HttpFilter {
  decodeHeaders?(endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus>;
  decodeData?(data: Uint8Array, endStream: boolean): HttpFilterDataResult | Promise<HttpFilterDataResult>;
  /** May return body bytes for the later filters before the trailers (Envoy's addDecodedData). */
  decodeTrailers?(trailers: HeaderMap): HttpFilterDataResult | Promise<HttpFilterDataResult>;
  encodeHeaders?(res: HttpResponse, endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus>;
  encodeData?(data: Uint8Array, endStream: boolean): HttpFilterDataResult | Promise<HttpFilterDataResult>;
  encodeTrailers?(trailers: HeaderMap): HttpFilterDataResult | Promise<HttpFilterDataResult>;
  /** The downstream went away or the stream finished; release everything. */
  onDestroy?(): void;
}

/** The long-lived per-snapshot factory of an HTTP filter. */
export interface HttpFilterFactory {
  /** True for the router (must be last). */
  readonly terminal: boolean;
  /** Makes the per-stream filter. */
  createFilter(cb: HttpFilterCallbacks): HttpFilter;
  /** Releases timers or resources when the snapshot is retired (called by the connection manager's close). */
  close?(): void | Promise<void>;
}

/**
 * The `create` signature of HTTP filter extensions; `hcm` carries the connection manager's stat prefix and the
 * filter's configured name (the key of its typed_per_filter_config entries; the extension name when absent).
 */
export type HttpFilterCreate<C> = (
  config: C,
  ctx: FactoryContext,
  hcm: { statPrefix: string; filterName?: string },
) => HttpFilterFactory;
