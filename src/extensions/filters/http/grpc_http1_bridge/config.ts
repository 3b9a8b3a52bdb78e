/** Config of envoy.filters.http.grpc_http1_bridge (envoy.extensions.filters.http.grpc_http1_bridge.v3.Config). */
import { z } from "zod/mini";
import { notSupported, onlyValues } from "../../../../config/schema_util.ts";

/** The Config message (upgrade_protobuf_to_grpc is not implemented: an error when true). */
export const grpcHttp1BridgeSchema = z.strictObject({
  upgrade_protobuf_to_grpc: z.optional(z.union([z.literal(false), notSupported])),
  ignore_query_parameters: onlyValues([false], "a bridged request keeps its query string"),
});

/** The parsed Config. */
export type GrpcHttp1BridgeConfig = z.infer<typeof grpcHttp1BridgeSchema>;
