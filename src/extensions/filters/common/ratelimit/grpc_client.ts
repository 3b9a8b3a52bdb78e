/** The RateLimitClient over gRPC: ShouldRateLimit on a GrpcChannel to the `rate_limit_service` cluster. */
import { GrpcChannel, GrpcError } from "../../../../grpc/client.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import {
  decodeRateLimitResponse,
  encodeRateLimitRequest,
  SHOULD_RATE_LIMIT_PATH,
} from "../../../../ratelimit/rls_proto.ts";
import type { RateLimitClient, RlsDecision, RlsRequest } from "./client.ts";
import type { RateLimitServiceConfig } from "./config.ts";

/** A ShouldRateLimit client reusing one HTTP/2 connection per host of the service's cluster. */
export class GrpcRateLimitClient implements RateLimitClient {
  readonly #channel: GrpcChannel;

  /** A client for the cluster named in `config.grpc_service.envoy_grpc`. */
  constructor(config: RateLimitServiceConfig, ctx: FactoryContext) {
    const g = config.grpc_service.envoy_grpc;
    this.#channel = new GrpcChannel(g.cluster_name, () => ctx.clusterManager.get(g.cluster_name), {
      authority: g.authority,
      timers: ctx.timers,
    });
  }

  async shouldRateLimit(req: RlsRequest, timeoutMs: number): Promise<RlsDecision | Error> {
    const bytes = encodeRateLimitRequest({
      domain: req.domain,
      descriptors: req.descriptors.map((entries) => ({ entries })),
      hitsAddend: req.hitsAddend,
    });
    const res = await this.#channel.unary(SHOULD_RATE_LIMIT_PATH, bytes, timeoutMs, req.metadata ?? null);
    if (res instanceof GrpcError) return res;
    try {
      const r = decodeRateLimitResponse(res);
      return {
        overallCode: r.overallCode,
        statuses: r.statuses.map((s) => ({
          code: s.code,
          requestsPerUnit: s.currentLimit?.requestsPerUnit ?? 0,
          unit: s.currentLimit?.unit ?? 0,
          limitRemaining: s.limitRemaining,
          secondsUntilReset: s.durationUntilResetMs === undefined
            ? -1
            : Math.ceil(s.durationUntilResetMs / 1000),
        })),
        responseHeadersToAdd: r.responseHeadersToAdd.map((h) => [h.key, h.value] as [string, string]),
        requestHeadersToAdd: r.requestHeadersToAdd.map((h) => [h.key, h.value] as [string, string]),
      };
    } catch (err) {
      return new Error(`Bad RateLimitResponse: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.#channel.close();
  }
}
