/** The mongo_proxy filter factory: built once per config snapshot (stats, access log file, delay settings). */
import type {
  DownstreamConnection,
  FactoryContext,
  NetworkFilterFactory,
  ReadFilter,
} from "../../../../network/filter.ts";
import { runtime } from "../../../../runtime/current.ts";
import { MongoAccessLog } from "./access_log.ts";
import { QueryInfo } from "./classify.ts";
import type { MongoProxyConfig } from "./config.ts";
import { MongoProxyFilter } from "./filter.ts";
import { MongoStats } from "./stats.ts";

/** Envoy's runtime keys of the delay fault. */
const RT_DELAY_PERCENT = "mongo.fault.fixed_delay.percent";
const RT_DELAY_MS = "mongo.fault.fixed_delay.duration_ms";
const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

/** Options for tests. */
export interface MongoProxyOptions {
  /** Largest message decoded (default: MongoDB's 48 000 000 bytes); a longer one is a decoding error. */
  maxMessageBytes?: number;
}

/** Built once per config snapshot: stats, the access log file, the delay settings. */
export class MongoProxyFactory implements NetworkFilterFactory {
  readonly terminal = false;
  readonly stats: MongoStats;
  readonly accessLog: MongoAccessLog | null;
  readonly emitDynamicMetadata: boolean;
  /** The configured delay: ms and FractionalPercent, or null. */
  readonly delay: { ms: number; numerator: number; denominator: number } | null;
  readonly maxMessageBytes: number | undefined;
  /** The classifier every connection of this config uses in turn (decoding is synchronous). */
  readonly info: QueryInfo;

  constructor(config: MongoProxyConfig, readonly ctx: FactoryContext, opts: MongoProxyOptions = {}) {
    const commands = config.commands?.length ? config.commands : ["delete", "insert", "update"];
    this.stats = new MongoStats(ctx.stats.scope(`mongo.${config.stat_prefix}`), commands);
    this.info = new QueryInfo(commands);
    this.accessLog = config.access_log ? new MongoAccessLog(config.access_log, ctx.stats) : null;
    this.emitDynamicMetadata = config.emit_dynamic_metadata ?? false;
    const d = config.delay;
    // an unset percentage is 0 % (Envoy's FaultDelayConfig): only the runtime key can turn delays on then
    this.delay = d
      ? {
        ms: d.fixed_delay,
        numerator: d.percentage?.numerator ?? 0,
        denominator: DENOMINATORS[d.percentage?.denominator ?? "HUNDRED"],
      }
      : null;
    this.maxMessageBytes = opts.maxMessageBytes;
  }

  createFilter(conn: DownstreamConnection): ReadFilter {
    return new MongoProxyFilter(this, conn);
  }

  /** Flushes and closes the access log. */
  async close(): Promise<void> {
    await this.accessLog?.close();
  }

  /** The delay for the next operation in ms (Envoy's delayDuration), or 0. */
  delayMs(): number {
    const d = this.delay!;
    const rt = runtime();
    if (!rt.fractionEnabled(RT_DELAY_PERCENT, d.numerator, d.denominator)) return 0;
    return rt.getInteger(RT_DELAY_MS, d.ms);
  }
}
