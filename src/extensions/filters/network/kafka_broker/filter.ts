/**
 * envoy.filters.network.kafka_broker: a non-terminal filter that decodes the Kafka requests and responses passing
 * through (any split across reads, no byte altered, nothing buffered beyond a few header bytes) into Envoy's
 * `kafka.<stat_prefix>.` stats: `request.<api>_request`, `request.unknown`, `request.failure`,
 * `response.<api>_response`, `response.unknown`, `response.failure` and the latency histograms
 * `response.<api>_response_duration` (ms from the request decoded to its response decoded).
 */
import type { Counter, Histogram, Scope } from "../../../../stats/store.ts";
import type { Clock } from "../../../../common/clock.ts";
import type { Logger } from "../../../../common/log.ts";
import type {
  DownstreamConnection,
  FactoryContext,
  NetworkFilterFactory,
  ReadFilter,
} from "../../../../network/filter.ts";
import { ALL_APIS, type ApiInfo } from "./schema.ts";
import { type KafkaCodecSink, KafkaSession } from "./codec.ts";
import type { KafkaBrokerConfig } from "./config.ts";

/** The stats of one filter config, declared once (counters up front, histograms on first sample). */
export class KafkaBrokerStats implements KafkaCodecSink {
  /** `request.<api>_request` by api_key. */
  readonly requests: Counter[] = [];
  /** `response.<api>_response` by api_key. */
  readonly responses: Counter[] = [];
  readonly requestUnknown: Counter;
  readonly requestFailure: Counter;
  readonly responseUnknown: Counter;
  readonly responseFailure: Counter;
  readonly #durations: (Histogram | undefined)[] = [];
  readonly #scope: Scope;
  readonly #log: Logger | undefined;

  constructor(scope: Scope, statPrefix: string, log?: Logger) {
    this.#scope = scope.scope(`kafka.${statPrefix}.`);
    this.#log = log;
    for (const a of ALL_APIS) {
      this.requests[a.key] = this.#scope.counter(`request.${a.requestStat}`);
      this.responses[a.key] = this.#scope.counter(`response.${a.responseStat}`);
    }
    this.requestUnknown = this.#scope.counter("request.unknown");
    this.requestFailure = this.#scope.counter("request.failure");
    this.responseUnknown = this.#scope.counter("response.unknown");
    this.responseFailure = this.#scope.counter("response.failure");
  }

  /** The latency histogram of `api` (made on its first sample). */
  duration(api: ApiInfo): Histogram {
    return this.#durations[api.key] ??= this.#scope.histogram(`response.${api.responseStat}_duration`, "ms");
  }

  onRequest(api: ApiInfo): void {
    this.requests[api.key].inc();
  }
  onRequestUnknown(): void {
    this.requestUnknown.inc();
  }
  onRequestFailure(reason: string): void {
    this.requestFailure.inc();
    this.#log?.debug(`kafka_broker: could not decode a request: ${reason}`);
  }
  onResponse(api: ApiInfo, _version: number, ms: number): void {
    this.responses[api.key].inc();
    // Envoy records whole milliseconds
    this.duration(api).record(Math.floor(ms));
  }
  onResponseUnknown(): void {
    this.responseUnknown.inc();
  }
  onResponseFailure(reason: string): void {
    this.responseFailure.inc();
    this.#log?.debug(`kafka_broker: could not decode a response: ${reason}`);
  }
}

/** The per-connection filter: one codec session fed by both directions. */
class KafkaBrokerFilter implements ReadFilter {
  readonly #session: KafkaSession;

  constructor(stats: KafkaBrokerStats, clock: Clock) {
    this.#session = new KafkaSession(stats, () => clock.monotonic());
  }

  onData(data: Uint8Array): void {
    if (data.length > 0) this.#session.onRequestData(data);
  }

  onWrite(data: Uint8Array): void {
    if (data.length > 0) this.#session.onResponseData(data);
  }

  onClose(): void {
    this.#session.close();
  }
}

/** Per-listener factory (Envoy's KafkaBroker filter config): stats are declared here, once. */
export class KafkaBrokerFactory implements NetworkFilterFactory {
  readonly terminal = false;
  /** The filter's stats under `kafka.<stat_prefix>.`. */
  readonly stats: KafkaBrokerStats;
  readonly #clock: Clock;

  constructor(config: KafkaBrokerConfig, ctx: FactoryContext) {
    this.stats = new KafkaBrokerStats(ctx.stats, config.stat_prefix, ctx.log);
    this.#clock = ctx.clock;
  }

  createFilter(_conn: DownstreamConnection): ReadFilter {
    return new KafkaBrokerFilter(this.stats, this.#clock);
  }
}
