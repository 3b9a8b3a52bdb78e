/**
 * `bootstrap_extensions` entry that runs the rate-limit service inside the proxy process (main thread), so a
 * single host needs nothing else:
 *
 *   bootstrap_extensions:
 *   - name: nuncio.bootstrap.ratelimit_service
 *     typed_config:
 *       "@type": type.googleapis.com/nuncio.ratelimit.v1.EmbeddedRateLimitService
 *       limits_path: config/ratelimit.yaml
 *       grpc_address: { socket_address: { address: 127.0.0.1, port_value: 8081 } }
 *
 * The rate-limit filters reach it like any RLS, through a cluster pointing at grpc_address.
 */
import { checkReadablePath } from "../common/file_check.ts";
import type { Extension } from "../registry/registry.ts";
import type { BootstrapExtensionCreate } from "../registry/bootstrap_extension.ts";
import { type EmbeddedRatelimitConfig, embeddedRatelimitSchema } from "./embedded_config.ts";

/** nuncio.bootstrap.ratelimit_service. */
export const embeddedRatelimitExtension: Extension<
  EmbeddedRatelimitConfig,
  BootstrapExtensionCreate<EmbeddedRatelimitConfig>
> = {
  name: "nuncio.bootstrap.ratelimit_service",
  typeUrls: ["type.googleapis.com/nuncio.ratelimit.v1.EmbeddedRateLimitService"],
  category: "bootstrap_extension",
  schema: embeddedRatelimitSchema as never,
  preflight: (config) => {
    const why = checkReadablePath(config.limits_path);
    return why ? [{ path: ["limits_path"], message: why }] : [];
  },
  create: async (config, ctx) => {
    // the service loads only when configured: workers and plain proxies never pay for them
    const { startEmbeddedRatelimit } = await import("./embedded.ts");
    const handle = await startEmbeddedRatelimit(config, ctx.stats);
    ctx.log.info(`embedded rate-limit service: gRPC on port ${handle.grpcPort}`);
    return { close: () => handle.close() };
  },
};
