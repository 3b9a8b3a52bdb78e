/** The AuthzClient over gRPC: Authorization/Check on a GrpcChannel to the `grpc_service.envoy_grpc` cluster. */
import { Logger } from "../../../../common/log.ts";
import { GrpcChannel, GrpcError } from "../../../../grpc/client.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import {
  type AuthzCall,
  type AuthzClient,
  type AuthzResponse,
  type CheckInput,
  CheckStatus,
  emptyResponse,
} from "./check.ts";
import { CHECK_PATH, decodeCheckResponse, encodeCheckRequest } from "./proto.ts";

const log = new Logger("ext_authz");

/** A resolved call: gRPC calls are not cancelled (the deadline bounds them). */
class GrpcCall implements AuthzCall {
  constructor(readonly result: Promise<AuthzResponse>) {}
  cancel(): void {}
}

/** A Check client reusing one HTTP/2 connection per host of the service's cluster. */
export class GrpcAuthzClient implements AuthzClient {
  readonly #channel: GrpcChannel;

  /** A client for `clusterName` with a per-call deadline of `timeoutMs`. */
  constructor(
    clusterName: string,
    authority: string | undefined,
    readonly timeoutMs: number,
    ctx: FactoryContext,
  ) {
    this.#channel = new GrpcChannel(clusterName, () => ctx.clusterManager.get(clusterName), {
      authority,
      timers: ctx.timers,
    });
  }

  check(input: CheckInput, metadata: HeaderMap | null = null): AuthzCall {
    return new GrpcCall(this.#call(encodeCheckRequest(input), metadata));
  }

  async #call(request: Uint8Array, metadata: HeaderMap | null): Promise<AuthzResponse> {
    const res = await this.#channel.unary(CHECK_PATH, request, this.timeoutMs, metadata);
    if (res instanceof GrpcError) {
      if (log.enabled("debug")) log.debug(`ext_authz Check failed: gRPC status ${res.status} ${res.message}`);
      return emptyResponse(CheckStatus.Error);
    }
    try {
      return decodeCheckResponse(res);
    } catch (err) {
      if (log.enabled("debug")) log.debug(`Bad CheckResponse: ${(err as Error).message}`);
      return emptyResponse(CheckStatus.Error);
    }
  }

  close(): void {
    this.#channel.close();
  }
}
