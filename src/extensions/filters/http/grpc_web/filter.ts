/**
 * envoy.filters.http.grpc_web, as Envoy's grpc_web_filter.cc: a request whose content-type is exactly
 * application/grpc-web, application/grpc-web+proto, application/grpc-web-text or
 * application/grpc-web-text+proto becomes a gRPC request (content-type application/grpc, te: trailers,
 * grpc-accept-encoding: identity when absent, no content-length); a -text request body is base64-decoded as
 * it streams (a partial quantum waits for the next chunk; at the end a length that is not a multiple of 4, or
 * bad base64, is answered 400). The response gets content-type application/grpc-web+proto (or
 * application/grpc-web-text+proto when the client accepts text, with every gRPC frame base64-encoded on its
 * own), and its trailers become a trailer frame (flag 0x80, `name:value\r\n` lines) at the end of the body.
 * A response that is neither gRPC nor proto-encoded gRPC-Web (an HTTP error from somewhere) is held: its body
 * (up to 16 KiB) becomes grpc-message, its HTTP status grpc-status, and it goes out with an empty body;
 * headers-only replies pass as they are (Envoy transforms only responses with a body). Stats
 * `cluster.<route cluster>.grpc-web.<service>.<method>.{<status>,success,failure,total}` when grpc-status is
 * seen. CORS headers are not touched.
 */
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterDataResult,
  type HttpFilterFactory,
  HttpFilterStatus,
  type HttpResponse,
} from "../../../../http/filter.ts";
import { httpToGrpcStatus, isGrpcContentType } from "../../../../http/grpc_util.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter, Scope } from "../../../../stats/store.ts";
import { decode, encodedLength, encodeInto } from "./base64.ts";

/** The extension name. */
export const GRPC_WEB_NAME = "envoy.filters.http.grpc_web";

const GRPC_WEB = "application/grpc-web";
const GRPC_WEB_PROTO = "application/grpc-web+proto";
const GRPC_WEB_TEXT = "application/grpc-web-text";
const GRPC_WEB_TEXT_PROTO = "application/grpc-web-text+proto";
/** Longest body kept for grpc-message when a non-gRPC response is transformed (Envoy's constant). */
export const MAX_BUFFERED_PLAINTEXT_LENGTH = 16384;
/** Methods with their own stats per factory (a guard on stat cardinality, as the router's). */
const MAX_METHODS = 1000;
const BAD_BASE64 = "Bad gRPC-web request, invalid base64 data.";
const EMPTY = new Uint8Array(0);
const TRAILER_FLAG = 0x80;

/** True for the four content-types Envoy's filter handles (exact, case-sensitive, no parameters). */
export function isGrpcWebContentType(ct: string | undefined): boolean {
  return ct === GRPC_WEB || ct === GRPC_WEB_PROTO || ct === GRPC_WEB_TEXT || ct === GRPC_WEB_TEXT_PROTO;
}

/** True when `ct`, parameters dropped, is application/grpc-web or application/grpc-web+proto (any case). */
export function hasProtoEncodedGrpcWebContentType(ct: string | undefined): boolean {
  if (ct === undefined) return false;
  const semi = ct.indexOf(";");
  const t = (semi < 0 ? ct : ct.slice(0, semi)).trimEnd().toLowerCase();
  return t === GRPC_WEB_PROTO || t === GRPC_WEB;
}

/** Envoy's Grpc::Common::isGrpcResponseHeaders: trailers-only needs grpc-status; else 200 and a gRPC type. */
export function isGrpcResponseHeaders(res: HttpResponse, endStream: boolean): boolean {
  if (endStream) return res.headers.has("grpc-status");
  return res.status === 200 && isGrpcContentType(res.headers.get("content-type"));
}

const HEX = "0123456789ABCDEF";

/** Envoy's Http::Utility::PercentEncoding::encode of bytes: below 0x20, from 0x7E up, and "%". */
export function percentEncode(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    s += b < 0x20 || b >= 0x7e || b === 0x25 ? "%" + HEX[b >> 4] + HEX[b & 15] : String.fromCharCode(b);
  }
  return s;
}

/** The counters of one service/method under `cluster.<name>.grpc-web.<service>.<method>.`. */
class MethodStats {
  readonly #scope: Scope;
  readonly #codes = new Map<string, Counter>();
  readonly success: Counter;
  readonly failure: Counter;
  readonly total: Counter;

  constructor(scope: Scope) {
    this.#scope = scope;
    this.success = scope.counter("success");
    this.failure = scope.counter("failure");
    this.total = scope.counter("total");
  }

  /** Counts a grpc-status value (Envoy's ContextImpl::chargeStat). */
  charge(status: string): void {
    let c = this.#codes.get(status);
    if (c === undefined) this.#codes.set(status, c = this.#scope.counter(status));
    c.inc();
    (status === "0" ? this.success : this.failure).inc();
    this.total.inc();
  }
}

/** Per-HCM factory: holds the per-method stats (the config has no fields). */
export class GrpcWebFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly #root: Scope;
  readonly #methods = new Map<string, MethodStats | null>();

  constructor(ctx: FactoryContext) {
    this.#root = ctx.stats;
  }

  /** Makes the per-stream filter. */
  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new GrpcWebFilter(cb, this);
  }

  /** The stats of `path` ("/pkg.Service/Method") on `cluster`; null when the path is not a gRPC method. */
  methodStats(cluster: string, path: string): MethodStats | null {
    const key = cluster + " " + path;
    let s = this.#methods.get(key);
    if (s !== undefined) return s;
    s = null;
    const slash = path.indexOf("/", 1);
    if (
      path.charCodeAt(0) === 47 && slash > 1 && slash < path.length - 1 && path.indexOf("/", slash + 1) < 0 &&
      path.indexOf("?") < 0 && this.#methods.size < MAX_METHODS
    ) {
      s = new MethodStats(
        this.#root.scope(`cluster.${cluster}.grpc-web.${path.slice(1, slash)}.${path.slice(slash + 1)}`),
      );
    }
    if (this.#methods.size < MAX_METHODS) this.#methods.set(key, s);
    return s;
  }
}

/** Splits a gRPC byte stream into whole frames (5-byte prefix + message), keeping a partial one. */
export class FrameSplitter {
  #pending: Uint8Array = EMPTY;

  /** The whole frames completed by `data`, as one contiguous span per frame (copies). */
  push(data: Uint8Array): Uint8Array[] {
    let buf = data;
    if (this.#pending.length > 0) {
      buf = new Uint8Array(this.#pending.length + data.length);
      buf.set(this.#pending);
      buf.set(data, this.#pending.length);
    }
    const frames: Uint8Array[] = [];
    let off = 0;
    while (buf.length - off >= 5) {
      const len = ((buf[off + 1] << 24) >>> 0) + (buf[off + 2] << 16) + (buf[off + 3] << 8) + buf[off + 4];
      if (buf.length - off - 5 < len) break;
      frames.push(buf.slice(off, off + 5 + len));
      off += 5 + len;
    }
    this.#pending = off === buf.length ? EMPTY : buf.slice(off);
    return frames;
  }
}

/** Base64 of each frame on its own, concatenated (as Envoy writes a -text response). */
function encodeFrames(frames: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const f of frames) n += encodedLength(f.length);
  const out = new Uint8Array(n);
  let off = 0;
  for (const f of frames) off = encodeInto(f, out, off);
  return out;
}

/** The trailer frame: 0x80, the big-endian length, then `name:value\r\n` per trailer. */
export function trailerFrame(trailers: HeaderMap): Uint8Array {
  let s = "";
  for (const [k, v] of trailers) s += k + ":" + v + "\r\n";
  const body = new TextEncoder().encode(s);
  const out = new Uint8Array(5 + body.length);
  out[0] = TRAILER_FLAG;
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
}

class GrpcWebFilter implements HttpFilter {
  #web = false;
  #textRequest = false;
  #textResponse = false;
  /** 0-3 bytes of base64 waiting for the rest of their quantum. */
  #b64: Uint8Array = EMPTY;
  #frames: FrameSplitter | null = null;
  #stats: MethodStats | null = null;
  /** The held response of a non-gRPC reply (see needsTransformation). */
  #res: HttpResponse | null = null;
  #transform = false;
  /** Up to MAX_BUFFERED_PLAINTEXT_LENGTH bytes of the held body, for grpc-message. */
  #held: Uint8Array[] = [];
  #heldBytes = 0;

  constructor(readonly cb: HttpFilterCallbacks, readonly factory: GrpcWebFactory) {}

  decodeHeaders(): HttpFilterStatus {
    const req = this.cb.request;
    const h = req.headers;
    const ct = h.get("content-type");
    if (!isGrpcWebContentType(ct)) return HttpFilterStatus.Continue;
    this.#web = true;
    // the route is chosen on the request as received (Envoy picks it before any filter runs), so a
    // `grpc: {}` route match does not see the content-type set below
    this.cb.route();
    h.remove("content-length");
    req.contentLength = -1;
    const cluster = this.cb.streamInfo.upstreamCluster;
    if (cluster !== "") this.#stats = this.factory.methodStats(cluster, req.path);
    this.#textRequest = ct === GRPC_WEB_TEXT || ct === GRPC_WEB_TEXT_PROTO;
    h.set("content-type", "application/grpc");
    const accept = h.get("accept");
    this.#textResponse = accept === GRPC_WEB_TEXT || accept === GRPC_WEB_TEXT_PROTO;
    h.set("te", "trailers");
    if (!h.has("grpc-accept-encoding")) h.set("grpc-accept-encoding", "identity");
    return HttpFilterStatus.Continue;
  }

  decodeData(data: Uint8Array, endStream: boolean): HttpFilterDataResult | Promise<HttpFilterDataResult> {
    if (!this.#textRequest) return HttpFilterStatus.Continue;
    const pending = this.#b64;
    const available = data.length + pending.length;
    if (endStream) {
      if (available === 0) return HttpFilterStatus.Continue;
      if (available % 4 !== 0) return this.#badBase64("grpc_base_64_decode_failed_bad_size");
    } else if (available < 4) {
      this.#b64 = joinBytes(pending, data);
      return HttpFilterStatus.StopIteration;
    }
    const take = available - (available % 4) - pending.length;
    const decoded = decode(
      pending.length === 0 ? data.subarray(0, take) : joinBytes(pending, data.subarray(0, take)),
    );
    if (decoded === null) return this.#badBase64("grpc_base_64_decode_failed");
    // `data` is only valid during this call: the rest of a quantum is copied
    this.#b64 = take === data.length ? EMPTY : data.slice(take);
    return decoded;
  }

  async #badBase64(details: string): Promise<HttpFilterStatus> {
    // Envoy's local reply for a gRPC-Web request is a plain one (it decides gRPC-ness before filters run);
    // the content-type as received makes nuncio's local reply take that shape too
    this.cb.request.headers.set("content-type", this.#textRequest ? GRPC_WEB_TEXT : GRPC_WEB);
    await this.cb.sendLocalReply(400, BAD_BASE64, { details });
    return HttpFilterStatus.StopIteration;
  }

  encodeHeaders(res: HttpResponse, endStream: boolean): HttpFilterStatus {
    if (!this.#web) return HttpFilterStatus.Continue;
    const h = res.headers;
    if (this.#stats !== null) {
      const status = h.get("grpc-status");
      if (status !== undefined) this.#stats.charge(status);
    }
    this.#transform = !isGrpcResponseHeaders(res, endStream) &&
      !(res.status === 200 && hasProtoEncodedGrpcWebContentType(h.get("content-type")));
    h.remove("content-length");
    h.set("content-type", this.#textResponse ? GRPC_WEB_TEXT_PROTO : GRPC_WEB_PROTO);
    if (endStream || !this.#transform) return HttpFilterStatus.Continue;
    this.#res = res;
    return HttpFilterStatus.StopIteration;
  }

  encodeData(data: Uint8Array, endStream: boolean): HttpFilterDataResult {
    if (!this.#web) return HttpFilterStatus.Continue;
    if (this.#transform) {
      if (!endStream) {
        this.#keep(data);
        return HttpFilterStatus.StopIterationAndBuffer;
      }
      // as Envoy: a body that came in one piece goes into grpc-message whole, a buffered one up to the limit
      if (this.#heldBytes === 0) this.#keepAll(data);
      else this.#keep(data);
      this.#transformHeaders();
      return EMPTY; // the held body is now grpc-message
    }
    if (!this.#textResponse) return HttpFilterStatus.Continue;
    const frames = (this.#frames ??= new FrameSplitter()).push(data);
    if (frames.length === 0) return endStream ? EMPTY : HttpFilterStatus.StopIteration;
    return encodeFrames(frames);
  }

  encodeTrailers(trailers: HeaderMap): HttpFilterDataResult {
    if (!this.#web) return HttpFilterStatus.Continue;
    if (this.#stats !== null) {
      const status = trailers.get("grpc-status");
      if (status !== undefined) this.#stats.charge(status);
    }
    if (this.#transform) {
      this.#transformHeaders();
      return EMPTY; // the held body is now grpc-message; the trailers follow as they are
    }
    const frame = trailerFrame(trailers);
    trailers.names.length = trailers.values.length = 0;
    if (!this.#textResponse) return frame;
    const out = new Uint8Array(encodedLength(frame.length));
    encodeInto(frame, out, 0);
    return out;
  }

  /** Keeps body bytes for grpc-message, up to Envoy's limit. */
  #keep(data: Uint8Array): void {
    const room = MAX_BUFFERED_PLAINTEXT_LENGTH - this.#heldBytes;
    if (room <= 0 || data.length === 0) return;
    const part = data.length <= room ? data.slice() : data.slice(0, room);
    this.#held.push(part);
    this.#heldBytes += part.length;
  }

  #keepAll(data: Uint8Array): void {
    if (data.length === 0) return;
    this.#held.push(data.slice());
    this.#heldBytes += data.length;
  }

  /** grpc-message from the kept body, grpc-status from the HTTP status, content-length 0. */
  #transformHeaders(): void {
    this.#transform = false;
    const res = this.#res;
    if (res === null) return;
    const body = new Uint8Array(this.#heldBytes);
    let off = 0;
    for (const p of this.#held) {
      body.set(p, off);
      off += p.length;
    }
    this.#held = [];
    this.#heldBytes = 0;
    const h = res.headers;
    h.set("grpc-message", percentEncode(body));
    h.set("grpc-status", String(httpToGrpcStatus(res.status)));
    h.set("content-length", "0");
  }
}

function joinBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
