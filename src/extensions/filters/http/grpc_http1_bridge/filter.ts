/**
 * envoy.filters.http.grpc_http1_bridge: lets an HTTP/1.1 client that cannot read trailers call a gRPC service.
 * For an HTTP/1.x request with a gRPC content-type the response is held and buffered until its trailers;
 * grpc-status and grpc-message are copied into the response headers, a non-zero (or unparsable) grpc-status
 * turns the HTTP status into 503, and the response goes out with content-length set to the buffered body
 * (so it only suits unary calls, as Envoy documents). HTTP/2 requests pass untouched.
 */
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
  type HttpResponse,
} from "../../../../http/filter.ts";
import { isGrpcContentType } from "../../../../http/grpc_util.ts";
import type { HeaderMap } from "../../../../http/headers.ts";

/** The extension name. */
export const GRPC_HTTP1_BRIDGE_NAME = "envoy.filters.http.grpc_http1_bridge";

/** Per-HCM bridge factory (the config has nothing the per-stream filter needs). */
export class GrpcHttp1BridgeFactory implements HttpFilterFactory {
  readonly terminal = false;

  /** Makes the per-stream filter. */
  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new GrpcHttp1BridgeFilter(cb);
  }
}

class GrpcHttp1BridgeFilter implements HttpFilter {
  #bridging = false;
  #res: HttpResponse | null = null;
  constructor(readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(): HttpFilterStatus {
    const req = this.cb.request;
    this.#bridging = req.protocol !== "HTTP/2" && isGrpcContentType(req.headers.get("content-type"));
    return HttpFilterStatus.Continue;
  }

  encodeHeaders(res: HttpResponse, endStream: boolean): HttpFilterStatus {
    if (!this.#bridging) return HttpFilterStatus.Continue;
    if (endStream) {
      // trailers-only reply: grpc-status is already in the headers
      const status = res.headers.get("grpc-status");
      if (status !== undefined && status !== "0") res.status = 503;
      return HttpFilterStatus.Continue;
    }
    this.#res = res;
    return HttpFilterStatus.StopIterationAndBuffer;
  }

  encodeData(_data: Uint8Array, endStream: boolean): HttpFilterStatus {
    if (!this.#bridging || endStream) return HttpFilterStatus.Continue;
    return HttpFilterStatus.StopIterationAndBuffer;
  }

  encodeTrailers(trailers: HeaderMap): HttpFilterStatus {
    const res = this.#res;
    if (!this.#bridging || res === null) return HttpFilterStatus.Continue;
    const h = res.headers;
    const status = trailers.get("grpc-status");
    if (status !== undefined) {
      if (status !== "0") res.status = 503;
      h.set("grpc-status", status);
    }
    const msg = trailers.get("grpc-message");
    if (msg !== undefined) h.set("grpc-message", msg);
    return HttpFilterStatus.Continue;
  }
}
