/** The envoy.filters.http.grpc_http1_bridge extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type GrpcHttp1BridgeConfig, grpcHttp1BridgeSchema } from "./config.ts";
import { GRPC_HTTP1_BRIDGE_NAME, GrpcHttp1BridgeFactory } from "./filter.ts";

/** envoy.filters.http.grpc_http1_bridge. */
export const grpcHttp1Bridge: Extension<GrpcHttp1BridgeConfig, HttpFilterCreate<GrpcHttp1BridgeConfig>> = {
  name: GRPC_HTTP1_BRIDGE_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.grpc_http1_bridge.v3.Config"],
  category: "http_filter",
  schema: grpcHttp1BridgeSchema as never,
  create: () => new GrpcHttp1BridgeFactory(),
};
