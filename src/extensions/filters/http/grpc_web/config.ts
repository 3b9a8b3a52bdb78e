/** Config of envoy.filters.http.grpc_web (envoy.extensions.filters.http.grpc_web.v3.GrpcWeb: no fields). */
import { z } from "zod/mini";

/** The GrpcWeb message (empty). */
export const grpcWebSchema = z.strictObject({});

/** The parsed GrpcWeb config. */
export type GrpcWebConfig = z.infer<typeof grpcWebSchema>;
