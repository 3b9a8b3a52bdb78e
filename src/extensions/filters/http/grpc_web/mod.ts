/** The envoy.filters.http.grpc_web extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type GrpcWebConfig, grpcWebSchema } from "./config.ts";
import { GRPC_WEB_NAME, GrpcWebFactory } from "./filter.ts";

/** envoy.filters.http.grpc_web. */
export const grpcWeb: Extension<GrpcWebConfig, HttpFilterCreate<GrpcWebConfig>> = {
  name: GRPC_WEB_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"],
  category: "http_filter",
  schema: grpcWebSchema as never,
  create: (_config, ctx) => new GrpcWebFactory(ctx),
};
