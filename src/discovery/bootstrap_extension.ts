/**
 * `bootstrap_extensions` entry that runs the registry (`nuncio discovery`) inside the proxy process (main thread,
 * memory store by default), so one `nuncio -c` serves a small site:
 *
 *   bootstrap_extensions:
 *   - name: nuncio.bootstrap.discovery
 *     typed_config:
 *       "@type": type.googleapis.com/nuncio.discovery.v1.EmbeddedRegistry
 *       address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }
 *       ttl: 600s
 *       sweep_interval: 30s
 *       env: production
 *       # redis: { url: redis://127.0.0.1:6379 }
 *
 * It is up before the listeners and clusters start, so a static EDS cluster polling it over REST
 * (`api_config_source: {api_type: REST, cluster_names: [registry]}`, the `registry` cluster pointing at
 * `address`) gets its first answer at once; it closes after the listeners drained, so a proxy that also
 * registers itself (nuncio.bootstrap.register) can still deregister from it.
 */
import type { Extension } from "../registry/registry.ts";
import type { BootstrapExtensionCreate } from "../registry/bootstrap_extension.ts";
import {
  type EmbeddedRegistryConfig,
  embeddedRegistryOptions,
  embeddedRegistrySchema,
} from "./embedded_config.ts";

/** nuncio.bootstrap.discovery. */
export const embeddedRegistryExtension: Extension<
  EmbeddedRegistryConfig,
  BootstrapExtensionCreate<EmbeddedRegistryConfig>
> = {
  name: "nuncio.bootstrap.discovery",
  typeUrls: ["type.googleapis.com/nuncio.discovery.v1.EmbeddedRegistry"],
  category: "bootstrap_extension",
  schema: embeddedRegistrySchema as never,
  create: async (config, ctx) => {
    // the registry loads only when configured: workers and plain proxies never pay for it
    const { startDiscoveryService } = await import("./run.ts");
    const handle = await startDiscoveryService({ ...embeddedRegistryOptions(config), stats: ctx.stats });
    ctx.log.info(`embedded registry: HTTP on port ${handle.port}`);
    return { close: () => handle.close() };
  },
};
