/**
 * envoy.filters.http.cors, as Envoy's CorsFilter: a request with an Origin on a route that has a CORS policy
 * counts `http.<stat_prefix>.cors.origin_valid` or `origin_invalid`; a preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered here with 200 and the allow headers, unless its origin does not
 * match and forward_not_matching_preflights (default true) sends it upstream; any other request from an
 * allowed origin gets access-control-allow-origin (and -credentials, -expose-headers) on its response. In
 * shadow mode (filter_enabled off, shadow_enabled on) only the stats are kept.
 *
 * Policies come from typed_per_filter_config at every level (route, virtual host, route configuration; the
 * most specific that sets a field gives it) or, when no level has one, from the deprecated `cors` fields of
 * the route and virtual host. Redirect and direct_response routes are left alone (Envoy's filter sees no
 * route entry there).
 */
import { Logger } from "../../../../common/log.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
  type HttpResponse,
} from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import { LEGACY_CORS_KEY, type PerFilterConfig, type RouteEntry } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter } from "../../../../stats/store.ts";
import { type CorsPolicy, EffectiveCors } from "./policy.ts";

/** The canonical extension name (the default typed_per_filter_config key). */
export const CORS_NAME = "envoy.filters.http.cors";

/** response_code_details of a preflight answered by the filter. */
export const CORS_RESPONSE_DETAILS = "cors_response";

const log = new Logger("filter");

/** The per-HCM factory: stats, and each route's resolved policies (built on first use, then cached). */
export class CorsFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly stats: { origin_valid: Counter; origin_invalid: Counter };
  /** By the most specific entry of a route: its chain of levels is fixed, so the resolution is too. */
  readonly #resolved = new WeakMap<PerFilterConfig, EffectiveCors>();

  constructor(ctx: FactoryContext, readonly name: string, statPrefix: string) {
    const s = ctx.stats.scope(`http.${statPrefix}.cors.`);
    this.stats = { origin_valid: s.counter("origin_valid"), origin_invalid: s.counter("origin_invalid") };
  }

  /** The CORS settings of `route`, or null when no level declares a policy for this filter. */
  settingsFor(route: RouteEntry): EffectiveCors | null {
    const m = route.perFilterConfig;
    if (m.size === 0) return null;
    const pfc = (m.get(this.name) ?? m.get(LEGACY_CORS_KEY)) as PerFilterConfig | undefined;
    if (pfc === undefined) return null;
    let eff = this.#resolved.get(pfc);
    if (eff === undefined) {
      const chain: CorsPolicy[] = [];
      for (let p: PerFilterConfig | undefined = pfc; p !== undefined; p = p.parent) {
        chain.push(p.config as CorsPolicy);
      }
      eff = new EffectiveCors(chain);
      this.#resolved.set(pfc, eff);
    }
    return eff;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new CorsFilter(this, cb);
  }
}

class CorsFilter implements HttpFilter {
  /** Set when the request is a CORS request from an allowed origin and the filter enforces. */
  #eff: EffectiveCors | null = null;
  /** The request's Origin, latched when it is allowed. */
  #origin = "";

  constructor(readonly f: CorsFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(_endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const cb = this.cb;
    const req = cb.request;
    // Envoy looks at the route and the enablement first; neither is observable without an Origin
    const origin = req.headers.get("origin");
    if (origin === undefined || origin === "") return HttpFilterStatus.Continue;
    const route = cb.route();
    if (route === null || route.kind !== "route") return HttpFilterStatus.Continue;
    const eff = this.f.settingsFor(route);
    if (eff === null) return HttpFilterStatus.Continue;
    const enabled = eff.enabled.hit();
    if (!enabled && !eff.shadow.hit()) return HttpFilterStatus.Continue;
    const allowed = eff.originAllowed(origin);
    if (allowed) this.f.stats.origin_valid.inc();
    else this.f.stats.origin_invalid.inc();
    if (!enabled) return HttpFilterStatus.Continue; // shadow: counted, not enforced
    if (allowed) {
      this.#eff = eff;
      this.#origin = origin;
    }
    if (req.method !== "OPTIONS") return HttpFilterStatus.Continue;
    const requestMethod = req.headers.get("access-control-request-method");
    if (requestMethod === undefined || requestMethod === "") return HttpFilterStatus.Continue;
    if (!allowed && eff.forwardNotMatchingPreflights) return HttpFilterStatus.Continue;
    if (log.enabled("debug")) {
      log.debug(
        `${cb.streamInfo.logPrefix()}cors (${this.f.name}): answering the preflight from ${origin} ` +
          (allowed ? "(origin allowed)" : "(origin not allowed)"),
      );
    }
    const headers = HeaderMap.from(eff.preflightHeaders(req.headers, origin, allowed));
    cb.streamInfo.responseCodeDetails = CORS_RESPONSE_DETAILS;
    return cb.encodeHeaders({ status: 200, headers }, true).then(() => HttpFilterStatus.StopIteration);
  }

  encodeHeaders(res: HttpResponse, _endStream: boolean): HttpFilterStatus {
    const eff = this.#eff;
    if (eff !== null) eff.applyToResponse(res.headers, this.#origin);
    return HttpFilterStatus.Continue;
  }
}
