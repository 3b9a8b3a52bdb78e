/** Config of envoy.filters.http.grpc_http1_bridge (envoy.extensions.filters.http.grpc_http1_bridge.v3.Config). */
import { z } from "zod";
import { notSupported } from "../../../../config/schema_util.ts";

/** The Config message (upgrade_protobuf_to_grpc is not implemented: an error when true). */
export const grpcHttp1BridgeSchema = z.strictObject({
  upgrade_protobuf_to_grpc: z.literal(false).or(notSupported).optional(),
  ignore_query_parameters: z.boolean().default(false),
});

/** The parsed Config. */
export type GrpcHttp1BridgeConfig = z.infer<typeof grpcHttp1BridgeSchema>;
