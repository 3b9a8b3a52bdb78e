/**
 * envoy.filters.network.local_ratelimit: each new connection takes a token from a bucket shared by all workers
 * (SharedArena); without one the connection is closed before the next filter sees it.
 */
import type { Counter } from "../../../../stats/store.ts";
import {
  type DownstreamConnection,
  type FactoryContext,
  FilterStatus,
  type NetworkFilterFactory,
  type ReadFilter,
} from "../../../../network/filter.ts";
import { SharedTokenBucket } from "../../common/token_bucket.ts";
import { RuntimeFlag } from "../../common/config.ts";
import type { NetworkLocalRateLimitConfig } from "./config.ts";

/** Per-listener factory; the filter object is stateless, so one instance serves every connection. */
export class NetworkLocalRateLimitFactory implements NetworkFilterFactory, ReadFilter {
  readonly terminal = false;
  readonly bucket: SharedTokenBucket;
  /** runtime_enabled: the runtime's boolean at its key, else its default (absent: enabled), per connection. */
  readonly enabled: RuntimeFlag;
  /** `local_rate_limit.<stat_prefix>.rate_limited`. */
  readonly rateLimited: Counter;

  constructor(config: NetworkLocalRateLimitConfig, ctx: FactoryContext) {
    const key = config.share_key !== undefined
      ? `lrl/net/share/${config.share_key}`
      : `lrl/net/${ctx.listenerScope.prefix}${config.stat_prefix}`;
    this.bucket = new SharedTokenBucket(ctx.shared, key, config.token_bucket, ctx.clock);
    this.enabled = RuntimeFlag.of(config.runtime_enabled, true);
    this.rateLimited = ctx.stats.counter(`local_rate_limit.${config.stat_prefix}.rate_limited`);
  }

  createFilter(_conn: DownstreamConnection): ReadFilter {
    return this;
  }

  /** The listener is retired (LDS, shutdown): the bucket's slot goes back to the SharedArena. */
  close(): void {
    this.bucket.release();
  }

  onNewConnection(conn: DownstreamConnection): FilterStatus {
    if (!this.enabled.enabled() || this.bucket.consume()) return FilterStatus.Continue;
    this.rateLimited.inc();
    conn.close();
    return FilterStatus.StopIteration;
  }
}
