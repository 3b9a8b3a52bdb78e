/**
 * The opt-in `x-nuncio-debug: 1` request header: for an internal request (Envoy's HCM `isInternal`: the
 * downstream address, or the single x-forwarded-for entry, is in `internal_address_config` or RFC 1918 /
 * loopback / ULA), the response carries `x-nuncio-debug: route=<vhost>/<route>;cluster=<c>;host=<ip:port>;
 * filters=<name>:<ms>,...;upstream=<ms>`. The stream's filters are wrapped with timers only for such a request;
 * any other request pays one boolean test (and, when internal, one header lookup) in `createFilters`.
 */
import type { ActiveStream } from "./active_stream.ts";
import { type HttpFilter, HttpFilterStatus, type HttpResponse } from "./filter.ts";

/** The request (and response) header name. */
export const DEBUG_HEADER = "x-nuncio-debug";

/** "RouterFilter" -> "router", "HttpRateLimitFilter" -> "http_rate_limit". */
export function filterLabel(f: HttpFilter, index: number): string {
  const n = (f as { constructor?: { name?: string } }).constructor?.name ?? "";
  const base = n.replace(/Filter$/, "");
  if (base === "" || base === "Object") return `filter${index}`;
  return base.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

const fmt = (ms: number) => ms.toFixed(2);

/** The per-request record of the decisions and the time each filter took. */
class DebugTrace {
  readonly times: number[];
  readonly labels: string[];
  routerStart = 0;
  routerIndex: number;

  constructor(readonly s: ActiveStream, filters: readonly HttpFilter[]) {
    this.labels = filters.map(filterLabel);
    this.times = filters.map(() => 0);
    this.routerIndex = filters.length - 1;
  }

  /** Wraps `f` so that every call adds its time (until a returned promise settles) to filter `i`. */
  wrap(f: HttpFilter, i: number): HttpFilter {
    const w: HttpFilter = {};
    const timed = (name: keyof HttpFilter) => {
      const fn = f[name] as ((...a: unknown[]) => unknown) | undefined;
      if (fn === undefined) return;
      (w as Record<string, unknown>)[name] = (...a: unknown[]) => {
        const t0 = performance.now();
        if (i === this.routerIndex && name === "decodeHeaders") {
          this.routerStart = this.s.cfg.clock.monotonic();
        }
        const r = fn.apply(f, a);
        if (r instanceof Promise) return r.finally(() => this.times[i] += performance.now() - t0);
        this.times[i] += performance.now() - t0;
        return r;
      };
    };
    timed("decodeHeaders");
    timed("decodeData");
    timed("decodeTrailers");
    timed("encodeHeaders");
    timed("encodeData");
    timed("encodeTrailers");
    if (f.onDestroy) w.onDestroy = () => f.onDestroy!();
    return w;
  }

  /** The header value, once response headers reach the last encoder. */
  value(): string {
    const s = this.s;
    const info = s.streamInfo;
    const route = s.route();
    const routeName = route
      ? `${route.virtualHostName}/${route.name || route.matchDescription.split(" ")[0]}`
      : "none";
    let upstream = "none";
    if (this.routerStart > 0 && info.upstreamHost !== "") {
      const end = info.firstUpstreamRxMono > 0 ? info.firstUpstreamRxMono : s.cfg.clock.monotonic();
      upstream = `${fmt(Math.max(0, end - this.routerStart))}ms`;
    }
    const filters = this.labels.map((l, i) => `${l}:${fmt(this.times[i])}ms`).join(",");
    return `route=${routeName};cluster=${s.routeClusterName || "none"};host=${
      info.upstreamHost || "none"
    };filters=${filters};upstream=${upstream}`;
  }
}

/**
 * Wraps the stream's filters with timers and puts a reporter first (so it is the last encoder, which sets the
 * response header). Called by ActiveStream.createFilters for an internal request asking for it; returns true
 * (the stream now has an encoder filter).
 */
export function traceFilters(s: ActiveStream): boolean {
  const fs = s.filters;
  const trace = new DebugTrace(s, fs);
  for (let i = 0; i < fs.length; i++) fs[i] = trace.wrap(fs[i], i);
  fs.unshift({
    encodeHeaders(res: HttpResponse) {
      res.headers.set(DEBUG_HEADER, trace.value());
      return HttpFilterStatus.Continue;
    },
  });
  return true;
}
