/**
 * HTTP/1.1 health check: one request per check on a kept-alive connection (reuse_connection), judged by
 * expected_statuses / retriable_statuses, `x-envoy-degraded` and `x-envoy-immediate-health-check-fail`.
 */
import { HeaderMap } from "../../http/headers.ts";
import { H1ClientCodec } from "../../http/h1/client.ts";
import { encodeRequestHead } from "../../http/h1/encode.ts";
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

/** The most of a response body a check reads (then the connection is dropped). */
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
  /** The HTTP/1.1 client codec of the kept connection. */
  #h1: H1ClientCodec | null = null;

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
    let h1 = this.#h1;
    if (h1 === null || h1.conn !== conn) h1 = this.#h1 = new H1ClientCodec(conn);
    const head = await h1.readResponseHead(o.method);
    const reusable = await h1.skipBody(MAX_BODY);
    h1.endResponse();
    if (!o.reuseConnection || !reusable) {
      this.#h1 = null;
      this.drop();
    }
    const h = head.headers;
    if (h.has("x-envoy-immediate-health-check-fail")) return ProbeOutcome.IMMEDIATE_FAILURE;
    if (inRanges(head.status, o.expected)) {
      return h.has("x-envoy-degraded") ? ProbeOutcome.DEGRADED : ProbeOutcome.SUCCESS;
    }
    return inRanges(head.status, o.retriable) ? ProbeOutcome.RETRIABLE_FAILURE : ProbeOutcome.ACTIVE_FAILURE;
  }
}
