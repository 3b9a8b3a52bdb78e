/** The envoy.filters.http.grpc_web extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type GrpcWebConfig, grpcWebSchema } from "./config.ts";
import { loadedModule } from "../../../../registry/prepare.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./filter.ts") | undefined;
const GRPC_WEB_NAME = "envoy.filters.http.grpc_web";

/** envoy.filters.http.grpc_web. */
export const grpcWeb: Extension<GrpcWebConfig, HttpFilterCreate<GrpcWebConfig>> = {
  name: GRPC_WEB_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"],
  category: "http_filter",
  schema: grpcWebSchema as never,
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (_config, ctx) => new (loadedModule(impl, GRPC_WEB_NAME).GrpcWebFactory)(ctx),
};
