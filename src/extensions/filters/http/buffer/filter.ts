/**
 * envoy.filters.http.buffer: holds the request until its whole body arrived (StopIterationAndBuffer), so a slow
 * client never occupies an upstream connection; a body over max_request_bytes gets the connection manager's
 * 413 (`request_payload_too_large`). A buffered request without content-length gets one.
 */
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
} from "../../../../http/filter.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import { perRouteConfig } from "../../common/config.ts";
import type { BufferConfig, BufferPerRouteConfig } from "./config.ts";

/** The canonical extension name (the default typed_per_filter_config key). */
export const BUFFER_NAME = "envoy.filters.http.buffer";

/** Per-HCM buffer settings. */
export class BufferFactory implements HttpFilterFactory {
  readonly terminal = false;
  constructor(readonly config: BufferConfig, readonly name: string) {}

  /** max_request_bytes for this stream; 0 when the route disables buffering. */
  limitFor(cb: HttpFilterCallbacks): number {
    const pfc = perRouteConfig(cb, this.name);
    if (!pfc) return this.config.max_request_bytes;
    const c = pfc.config as BufferPerRouteConfig;
    return c.buffer ? c.buffer.max_request_bytes : 0;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new BufferFilter(this, cb);
  }
}

class BufferFilter implements HttpFilter {
  #buffering = false;
  #bytes = 0;
  constructor(readonly f: BufferFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(endStream: boolean): HttpFilterStatus {
    if (endStream) return HttpFilterStatus.Continue;
    const limit = this.f.limitFor(this.cb);
    if (limit === 0) return HttpFilterStatus.Continue;
    this.cb.setDecoderBufferLimit?.(limit);
    this.#buffering = true;
    return HttpFilterStatus.StopIterationAndBuffer;
  }

  decodeData(data: Uint8Array, endStream: boolean): HttpFilterStatus {
    if (!this.#buffering) return HttpFilterStatus.Continue;
    this.#bytes += data.length;
    if (!endStream) return HttpFilterStatus.StopIterationAndBuffer;
    this.#done();
    return HttpFilterStatus.Continue;
  }

  decodeTrailers(_trailers: HeaderMap): HttpFilterStatus {
    if (this.#buffering) this.#done();
    return HttpFilterStatus.Continue;
  }

  /** The whole body is in: give the request a content-length if it came without one (as Envoy does). */
  #done(): void {
    this.#buffering = false;
    const req = this.cb.request;
    if (req.contentLength < 0 && !req.headers.has("content-length")) {
      req.headers.remove("transfer-encoding");
      req.headers.addLower("content-length", String(this.#bytes));
      req.contentLength = this.#bytes;
    }
  }
}
