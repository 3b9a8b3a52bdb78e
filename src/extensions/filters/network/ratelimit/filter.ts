/**
 * envoy.filters.network.ratelimit: one ShouldRateLimit call per new connection, with the configured
 * descriptors; over the limit the connection is closed before any byte reaches the upstream (a limit in front
 * of a database). Service errors fail open unless failure_mode_deny.
 */
import {
  type DownstreamConnection,
  type FactoryContext,
  FilterStatus,
  type NetworkFilterFactory,
  type ReadFilter,
} from "../../../../network/filter.ts";
import type { Counter, Gauge } from "../../../../stats/store.ts";
import type { DescriptorEntry } from "../../../../http/routing/rate_limits.ts";
import { type RateLimitClient, RlsCode } from "../../common/ratelimit/client.ts";
import type { NetworkRateLimitConfig } from "./config.ts";

/** `ratelimit.<stat_prefix>.*` (Envoy's network rate limit stats). */
interface NetRlStats {
  total: Counter;
  error: Counter;
  over_limit: Counter;
  ok: Counter;
  cx_closed: Counter;
  failure_mode_allowed: Counter;
  active: Gauge;
}

/** Per-snapshot state of one network ratelimit filter config. */
export class NetworkRateLimitFactory implements NetworkFilterFactory {
  readonly terminal = false;
  readonly stats: NetRlStats;
  readonly descriptors: DescriptorEntry[][];
  readonly timeoutMs: number;

  constructor(
    readonly config: NetworkRateLimitConfig,
    ctx: FactoryContext,
    readonly client: RateLimitClient,
  ) {
    const s = ctx.stats.scope(`ratelimit.${config.stat_prefix}`);
    this.stats = {
      total: s.counter("total"),
      error: s.counter("error"),
      over_limit: s.counter("over_limit"),
      ok: s.counter("ok"),
      cx_closed: s.counter("cx_closed"),
      failure_mode_allowed: s.counter("failure_mode_allowed"),
      active: s.gauge("active"),
    };
    this.descriptors = config.descriptors.map((d) => d.entries.map((e) => ({ key: e.key, value: e.value })));
    this.timeoutMs = config.timeout ?? 20;
  }

  createFilter(_conn: DownstreamConnection): ReadFilter {
    return new NetworkRateLimitFilter(this);
  }

  close(): void {
    this.client.close();
  }
}

class NetworkRateLimitFilter implements ReadFilter {
  constructor(readonly f: NetworkRateLimitFactory) {}

  async onNewConnection(conn: DownstreamConnection): Promise<FilterStatus> {
    const f = this.f, s = f.stats;
    s.total.inc();
    s.active.inc();
    let res;
    try {
      res = await f.client.shouldRateLimit(
        { domain: f.config.domain, descriptors: f.descriptors, hitsAddend: 0 },
        f.timeoutMs,
      );
    } finally {
      s.active.dec();
    }
    if (res instanceof Error) {
      s.error.inc();
      if (f.config.failure_mode_deny) {
        s.cx_closed.inc();
        conn.close();
        return FilterStatus.StopIteration;
      }
      s.failure_mode_allowed.inc();
      return FilterStatus.Continue;
    }
    if (res.overallCode === RlsCode.OverLimit) {
      s.over_limit.inc();
      s.cx_closed.inc();
      conn.close();
      return FilterStatus.StopIteration;
    }
    s.ok.inc();
    return FilterStatus.Continue;
  }
}
