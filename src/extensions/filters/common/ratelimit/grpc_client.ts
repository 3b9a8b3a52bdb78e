/**
 * The RateLimitClient over gRPC: ShouldRateLimit on a GrpcChannel to the `rate_limit_service` cluster. When
 * the host the cluster picks is the embedded service running on this very event loop (`--concurrency 1`,
 * `src/ratelimit/local.ts`), the call goes to it directly: no protobuf, no HTTP/2 framing, no socket, and
 * with memory counters no promise either. Same decisions and the same errors (a RateLimitServiceError's
 * gRPC status), the deadline kept for answers that wait (Redis counters).
 */
import type { TimeoutTarget, TimerWheel } from "../../../../common/timer_wheel.ts";
import { TimerEntry } from "../../../../common/timer_wheel.ts";
import { GrpcChannel, GrpcError } from "../../../../grpc/client.ts";
import { GrpcStatus } from "../../../../grpc/frame.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Cluster, LbContext } from "../../../../upstream/types.ts";
import { type LocalRateLimitService, localRateLimitService } from "../../../../ratelimit/local.ts";
import {
  decodeRateLimitResponse,
  encodeRateLimitRequest,
  SHOULD_RATE_LIMIT_PATH,
} from "../../../../ratelimit/rls_proto.ts";
import type {
  RateLimitDescriptor,
  RateLimitRequest,
  RateLimitResponse,
} from "../../../../ratelimit/types.ts";
import type { RateLimitClient, RlsDecision, RlsDescriptorStatus, RlsRequest } from "./client.ts";
import type { RateLimitServiceConfig } from "./config.ts";

const NO_LB_CONTEXT: LbContext = {};

/** A ShouldRateLimit client reusing one HTTP/2 connection per host of the service's cluster. */
export class GrpcRateLimitClient implements RateLimitClient {
  readonly #channel: GrpcChannel;
  readonly #cluster: () => Cluster | undefined;
  readonly #timers: TimerWheel;

  /** A client for the cluster named in `config.grpc_service.envoy_grpc`. */
  constructor(config: RateLimitServiceConfig, ctx: FactoryContext) {
    const g = config.grpc_service.envoy_grpc;
    this.#cluster = () => ctx.clusterManager.get(g.cluster_name);
    this.#channel = new GrpcChannel(g.cluster_name, this.#cluster, {
      authority: g.authority,
      timers: ctx.timers,
    });
    this.#timers = ctx.timers;
  }

  shouldRateLimit(req: RlsRequest, timeoutMs: number): RlsDecision | Error | Promise<RlsDecision | Error> {
    const local = this.#local();
    if (local !== null) return this.#direct(local, req, timeoutMs);
    return this.#grpc(req, timeoutMs);
  }

  /** The service in this isolate at the address the cluster picks, or null (then gRPC). */
  #local(): LocalRateLimitService | null {
    const cluster = this.#cluster();
    if (cluster === undefined) return null;
    const host = cluster.chooseHost(NO_LB_CONTEXT);
    return host === null ? null : localRateLimitService(host.address, host.port);
  }

  #direct(
    svc: LocalRateLimitService,
    req: RlsRequest,
    timeoutMs: number,
  ): RlsDecision | Error | Promise<RlsDecision | Error> {
    let res: RateLimitResponse | Promise<RateLimitResponse>;
    try {
      res = svc.shouldRateLimit(toRateLimitRequest(req));
    } catch (e) {
      return serviceError(e);
    }
    if (res instanceof Promise) return new DirectCall(this.#timers, timeoutMs, res).done;
    return toDecision(res);
  }

  async #grpc(req: RlsRequest, timeoutMs: number): Promise<RlsDecision | Error> {
    const bytes = encodeRateLimitRequest(toRateLimitRequest(req));
    const res = await this.#channel.unary(SHOULD_RATE_LIMIT_PATH, bytes, timeoutMs, req.metadata ?? null);
    if (res instanceof GrpcError) return res;
    try {
      return toDecision(decodeRateLimitResponse(res));
    } catch (err) {
      return new Error(`Bad RateLimitResponse: ${(err as Error).message}`);
    }
  }

  close(): void {
    this.#channel.close();
  }
}

function toRateLimitRequest(req: RlsRequest): RateLimitRequest {
  const n = req.descriptors.length;
  const descriptors = new Array<RateLimitDescriptor>(n);
  for (let i = 0; i < n; i++) descriptors[i] = { entries: req.descriptors[i] };
  return { domain: req.domain, descriptors, hitsAddend: req.hitsAddend };
}

/** The decision the filters read, from a response (decoded, or straight from the service). */
function toDecision(r: RateLimitResponse): RlsDecision {
  const n = r.statuses.length;
  const statuses = new Array<RlsDescriptorStatus>(n);
  for (let i = 0; i < n; i++) {
    const s = r.statuses[i];
    const ms = s.durationUntilResetMs;
    statuses[i] = {
      code: s.code,
      requestsPerUnit: s.currentLimit?.requestsPerUnit ?? 0,
      unit: s.currentLimit?.unit ?? 0,
      limitRemaining: s.limitRemaining,
      secondsUntilReset: ms === undefined ? -1 : Math.ceil(ms / 1000),
    };
  }
  return {
    overallCode: r.overallCode,
    statuses,
    responseHeadersToAdd: headerPairs(r.responseHeadersToAdd),
    requestHeadersToAdd: headerPairs(r.requestHeadersToAdd),
  };
}

const NO_HEADERS: readonly [string, string][] = Object.freeze([]);

function headerPairs(h: RateLimitResponse["responseHeadersToAdd"]): [string, string][] {
  if (h.length === 0) return NO_HEADERS as [string, string][];
  const out = new Array<[string, string]>(h.length);
  for (let i = 0; i < h.length; i++) out[i] = [h[i].key, h[i].value];
  return out;
}

/** What a gRPC caller would see for the service's throw: its status (RateLimitServiceError) or UNKNOWN. */
function serviceError(e: unknown): GrpcError {
  const s = (e as { grpcStatus?: unknown } | null)?.grpcStatus;
  const status = typeof s === "number" && s > 0 && s <= 16 ? s : GrpcStatus.UNKNOWN;
  return new GrpcError(status, (e as Error)?.message ?? String(e));
}

/** A direct call whose answer waits (Redis counters): the decision or the deadline, whichever comes first. */
class DirectCall implements TimeoutTarget {
  readonly done: Promise<RlsDecision | Error>;
  #resolve!: (v: RlsDecision | Error) => void;
  #finished = false;
  readonly #timer = new TimerEntry(this);

  constructor(readonly timers: TimerWheel, timeoutMs: number, res: Promise<RateLimitResponse>) {
    this.done = new Promise((r) => this.#resolve = r);
    timers.arm(this.#timer, Math.max(1, timeoutMs));
    res.then((r) => this.#finish(toDecision(r)), (e) => this.#finish(serviceError(e)));
  }

  onTimeout(): void {
    this.#finish(new GrpcError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded"));
  }

  #finish(v: RlsDecision | Error): void {
    if (this.#finished) return;
    this.#finished = true;
    this.timers.disarm(this.#timer);
    this.#resolve(v);
  }
}
