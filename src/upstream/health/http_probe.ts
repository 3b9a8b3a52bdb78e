/**
 * HTTP/1.1 health check: one request per check on a kept-alive connection (reuse_connection), judged by
 * expected_statuses / retriable_statuses, `x-envoy-degraded` and `x-envoy-immediate-health-check-fail`.
 */
import { HeaderMap } from "../../http/headers.ts";
import { ChunkedDecoder } from "../../http/h1/chunked.ts";
import { encodeRequestHead } from "../../http/h1/encode.ts";
import { parseResponseHead, responseBodyKind } from "../../http/h1/response.ts";
import type { H1Limits } from "../../http/h1/types.ts";
import type { HostImpl } from "../host.ts";
import type { HealthCheckConfig } from "./config.ts";
import {
  ConnProbe,
  type Probe,
  type ProbeConnect,
  type ProbeFactory,
  ProbeOutcome,
  type ProbeSink,
  writeAll,
} from "./probe.ts";

const LIMITS: H1Limits = { maxHeadersBytes: 60 * 1024, maxHeadersCount: 100 };
const MAX_BODY = 1 << 20;

/** A status range [start, end). */
export interface StatusRange {
  start: number;
  end: number;
}

/** Options of the HTTP checker. */
export interface HttpProbeOptions {
  /** The encoded request head (built once at config time). */
  request: Uint8Array;
  method: string;
  expected: readonly StatusRange[];
  retriable: readonly StatusRange[];
  reuseConnection: boolean;
  /** Socket opener (the cluster's transport; plain TCP when absent). */
  connect?: ProbeConnect;
}

/** Builds the HTTP probe options of a HealthCheck (config time); `cluster` is the default Host. */
export function httpProbeOptions(cfg: HealthCheckConfig, cluster: string): HttpProbeOptions {
  const http = cfg.http_health_check!;
  const headers = new HeaderMap();
  headers.add("user-agent", "Envoy/HC");
  for (const o of http.request_headers_to_add) {
    const name = o.header.key.toLowerCase();
    const overwrite = o.append === false || o.append_action === "OVERWRITE_IF_EXISTS_OR_ADD";
    if (o.append_action === "ADD_IF_ABSENT" && headers.has(name)) continue;
    if (overwrite) headers.set(name, o.header.value);
    else headers.add(name, o.header.value);
  }
  for (const r of http.request_headers_to_remove) headers.remove(r.toLowerCase());
  return {
    request: encodeRequestHead(http.method, http.path, headers, { authority: http.host || cluster }),
    method: http.method,
    expected: http.expected_statuses ?? [{ start: 200, end: 201 }],
    retriable: http.retriable_statuses,
    reuseConnection: cfg.reuse_connection,
  };
}

function inRanges(status: number, ranges: readonly StatusRange[]): boolean {
  for (const r of ranges) if (status >= r.start && status < r.end) return true;
  return false;
}

/** The HTTP ProbeFactory. */
export class HttpProbeFactory implements ProbeFactory {
  readonly type = "HTTP";
  constructor(readonly opts: HttpProbeOptions) {}
  create(host: HostImpl, sink: ProbeSink): Probe {
    return new HttpProbe(host, sink, this.opts);
  }
}

class HttpProbe extends ConnProbe {
  readonly #opts: HttpProbeOptions;
  #buf = new Uint8Array(16 * 1024);

  constructor(host: HostImpl, sink: ProbeSink, opts: HttpProbeOptions) {
    super(host, sink, opts.connect);
    this.#opts = opts;
  }

  protected retryAfterReuse(outcome: ProbeOutcome): boolean {
    // a kept-alive connection the upstream closed while idle: not a failed check
    return outcome === ProbeOutcome.NETWORK_FAILURE;
  }

  protected async exchange(conn: Deno.Conn): Promise<ProbeOutcome> {
    const o = this.#opts;
    await writeAll(conn, o.request);
    let end = 0;
    let head = null;
    for (;;) {
      if (end === this.#buf.length) this.#grow(end);
      const n = await conn.read(this.#buf.subarray(end));
      if (n === null) throw new Error("Closed before the response head");
      end += n;
      head = parseResponseHead(this.#buf, 0, end, LIMITS);
      if (head !== null) {
        if (head.status >= 100 && head.status < 200 && head.status !== 101) {
          this.#buf.copyWithin(0, head.headEnd, end);
          end -= head.headEnd;
          head = null;
          continue;
        }
        break;
      }
    }
    const kind = responseBodyKind(head, o.method);
    let pos = head.headEnd;
    if (kind === "length") {
      let left = head.contentLength - (end - pos);
      while (left > 0) {
        const n = await conn.read(this.#buf);
        if (n === null) throw new Error("Closed inside the body");
        left -= n;
      }
    } else if (kind === "chunked") {
      await this.#skipChunked(conn, pos, end);
    } else if (kind === "close") {
      let total = 0;
      while ((pos = (await conn.read(this.#buf)) ?? -1) >= 0) {
        total += pos;
        if (total > MAX_BODY) break;
      }
    }
    if (!o.reuseConnection || !head.keepAlive || kind === "close") this.drop();
    const h = head.headers;
    if (h.has("x-envoy-immediate-health-check-fail")) return ProbeOutcome.IMMEDIATE_FAILURE;
    if (inRanges(head.status, o.expected)) {
      return h.has("x-envoy-degraded") ? ProbeOutcome.DEGRADED : ProbeOutcome.SUCCESS;
    }
    return inRanges(head.status, o.retriable) ? ProbeOutcome.RETRIABLE_FAILURE : ProbeOutcome.ACTIVE_FAILURE;
  }

  async #skipChunked(conn: Deno.Conn, pos: number, end: number): Promise<void> {
    const dec = new ChunkedDecoder(LIMITS, 502);
    let total = 0;
    for (;;) {
      const r = dec.next(this.#buf, pos, end);
      if (r.kind === "done") return;
      if (r.kind === "data") {
        pos = r.consumed;
        total += r.end - r.start;
        if (total > MAX_BODY) throw new Error("Health check body too large");
        continue;
      }
      // need_more: keep [consumed, end), read more after it
      const keep = end - r.consumed;
      this.#buf.copyWithin(0, r.consumed, end);
      pos = 0;
      end = keep;
      if (end === this.#buf.length) this.#grow(end);
      const n = await conn.read(this.#buf.subarray(end));
      if (n === null) throw new Error("Closed inside the body");
      end += n;
    }
  }

  #grow(len: number): void {
    if (len >= LIMITS.maxHeadersBytes + 16 * 1024) throw new Error("Health check response head too large");
    const bigger = new Uint8Array(len * 2);
    bigger.set(this.#buf);
    this.#buf = bigger;
  }
}
