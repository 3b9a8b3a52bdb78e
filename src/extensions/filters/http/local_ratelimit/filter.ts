/**
 * envoy.filters.http.local_ratelimit: a token bucket per filter config (and per route or virtual host that
 * has its own typed_per_filter_config), shared by all workers through the SharedArena. Over the limit the
 * request gets a local reply (429 by default, flag RL, `x-envoy-ratelimited: true`).
 */
import { Logger } from "../../../../common/log.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import type { HeaderValueOption } from "../../../../config/common.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
  type HttpResponse,
} from "../../../../http/filter.ts";
import type { PerFilterConfig } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter } from "../../../../stats/store.ts";
import { perRouteConfig, RuntimeFraction } from "../../common/config.ts";
import { SharedTokenBucket } from "../../common/token_bucket.ts";
import type { LocalRateLimitConfig } from "./config.ts";

/** The canonical extension name (the default typed_per_filter_config key). */
export const LOCAL_RATELIMIT_NAME = "envoy.filters.http.local_ratelimit";

/** A header to add: name (lowercase), value, and whether it replaces existing values. */
type HeaderAdd = readonly [string, string, boolean];

function compileHeaders(list: readonly HeaderValueOption[]): HeaderAdd[] {
  return list.map((o) => [
    o.header.key.toLowerCase(),
    o.header.value,
    o.append === false || (o.append_action?.startsWith("OVERWRITE") ?? false),
  ]);
}

/** One LocalRateLimit config (filter level or per route), compiled with its bucket and stats. */
export class RateLimitSettings {
  readonly bucket: SharedTokenBucket | undefined;
  /** filter_enabled / filter_enforced: their runtime keys, else the default (0 % when absent, as Envoy). */
  readonly enabled: RuntimeFraction;
  readonly enforced: RuntimeFraction;
  readonly status: number;
  /** Headers of the rate-limited local reply. */
  readonly replyHeaders: [string, string][];
  readonly notEnforcedHeaders: HeaderAdd[];
  readonly xHeaders: boolean;
  readonly stats: { enabled: Counter; enforced: Counter; rate_limited: Counter; ok: Counter };

  /** Builds at config time; `key` names the bucket's shared slot (same in every worker). */
  constructor(c: LocalRateLimitConfig, ctx: FactoryContext, key: string) {
    this.bucket = c.token_bucket
      ? new SharedTokenBucket(ctx.shared, key, c.token_bucket, ctx.clock)
      : undefined;
    this.enabled = new RuntimeFraction(c.filter_enabled, 0);
    this.enforced = new RuntimeFraction(c.filter_enforced, 0);
    const code = c.status?.code ?? 429;
    this.status = code >= 400 && code < 600 ? code : 429;
    this.replyHeaders = [["x-envoy-ratelimited", "true"]];
    for (const [n, v] of compileHeaders(c.response_headers_to_add)) this.replyHeaders.push([n, v]);
    this.notEnforcedHeaders = compileHeaders(c.request_headers_to_add_when_not_enforced);
    this.xHeaders = c.enable_x_ratelimit_headers === "DRAFT_VERSION_03";
    const s = ctx.stats.scope(`${c.stat_prefix}.http_local_rate_limit`);
    this.stats = {
      enabled: s.counter("enabled"),
      enforced: s.counter("enforced"),
      rate_limited: s.counter("rate_limited"),
      ok: s.counter("ok"),
    };
  }
}

/** The per-HCM factory: the filter-level settings plus per-route settings compiled on first use. */
export class LocalRateLimitFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly settings: RateLimitSettings;
  /** Per-route settings by route config (a Map, not a WeakMap: their bucket slots are released on close). */
  readonly #perRoute = new Map<PerFilterConfig, RateLimitSettings>();
  readonly #ctx: FactoryContext;
  readonly #key: string;

  constructor(config: LocalRateLimitConfig, ctx: FactoryContext, readonly name: string, statPrefix: string) {
    this.#ctx = ctx;
    this.#key = `lrl/http/${ctx.listenerScope.prefix}${statPrefix}/${name}`;
    this.settings = new RateLimitSettings(config, ctx, this.#key);
  }

  /** The settings for this stream: the route's own config when it has one, else the filter's. */
  settingsFor(cb: HttpFilterCallbacks): RateLimitSettings {
    const pfc = perRouteConfig(cb, this.name);
    if (!pfc) return this.settings;
    let s = this.#perRoute.get(pfc);
    if (!s) {
      s = new RateLimitSettings(
        pfc.config as LocalRateLimitConfig,
        this.#ctx,
        `${this.#key}@${pfc.location}`,
      );
      this.#perRoute.set(pfc, s);
    }
    return s;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new LocalRateLimitFilter(this, cb);
  }

  /** The snapshot is retired: every bucket slot it took goes back to the SharedArena. */
  close(): void {
    this.settings.bucket?.release();
    for (const s of this.#perRoute.values()) s.bucket?.release();
    this.#perRoute.clear();
  }
}

const log = new Logger("filter");

class LocalRateLimitFilter implements HttpFilter {
  #checked: RateLimitSettings | undefined;
  #remaining = 0;
  constructor(readonly f: LocalRateLimitFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(_endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const s = this.f.settingsFor(this.cb);
    const bucket = s.bucket;
    if (!bucket || !s.enabled.enabled()) {
      if (log.enabled("debug")) {
        log.debug(
          `${this.cb.streamInfo.logPrefix()}local_ratelimit (${this.f.name}) skips the request: ` +
            (bucket ? "filter_enabled not hit" : "no token bucket for this route"),
        );
      }
      return HttpFilterStatus.Continue;
    }
    s.stats.enabled.inc();
    const ok = bucket.consume();
    if (s.xHeaders) {
      this.#checked = s;
      this.#remaining = bucket.remaining();
    }
    if (ok) {
      s.stats.ok.inc();
      return HttpFilterStatus.Continue;
    }
    s.stats.rate_limited.inc();
    if (!s.enforced.enabled()) {
      const h = this.cb.request.headers;
      for (const [n, v, overwrite] of s.notEnforcedHeaders) overwrite ? h.set(n, v) : h.addLower(n, v);
      return HttpFilterStatus.Continue;
    }
    s.stats.enforced.inc();
    if (log.enabled("debug")) {
      log.debug(
        `${this.cb.streamInfo.logPrefix()}local_ratelimit (${this.f.name}): token bucket empty, limited`,
      );
    }
    return this.cb.sendLocalReply(s.status, "local_rate_limited", {
      flags: ResponseFlag.RateLimited,
      details: "local_rate_limited",
      headers: s.replyHeaders,
    }).then(() => HttpFilterStatus.StopIteration);
  }

  encodeHeaders(res: HttpResponse, _endStream: boolean): HttpFilterStatus {
    const s = this.#checked;
    if (s) {
      const b = s.bucket!;
      res.headers.set("x-ratelimit-limit", String(b.maxTokens));
      res.headers.set("x-ratelimit-remaining", String(this.#remaining));
      res.headers.set("x-ratelimit-reset", String(Math.ceil(b.msUntilFill() / 1000)));
    }
    return HttpFilterStatus.Continue;
  }
}
