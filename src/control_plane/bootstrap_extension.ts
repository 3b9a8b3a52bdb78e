/**
 * `bootstrap_extensions` entry that runs the control plane (`nuncio control-plane`, with its registry unless
 * `registry_url` names one) inside the proxy process, on the main thread, so one `nuncio -c` with a tiny
 * bootstrap serves a small site: the proxy points its own ADS at `grpc_address`, services check in with
 * `nuncio register --registry http://<address>`, and other proxies use the same ADS port.
 *
 *   bootstrap_extensions:
 *   - name: nuncio.bootstrap.control_plane
 *     typed_config:
 *       "@type": type.googleapis.com/nuncio.control_plane.v1.EmbeddedControlPlane
 *       manifests: /etc/nuncio/manifests
 *       defaults: /etc/nuncio/defaults.yaml
 *       edge: /etc/nuncio/edge.yaml
 *       address: { socket_address: { address: 127.0.0.1, port_value: 18080 } }
 *       grpc_address: { socket_address: { address: 127.0.0.1, port_value: 18000 } }
 *
 * It is up before the proxy's xDS subscriptions start, so the proxy's first ADS request is answered at once.
 */
import type { BootstrapExtensionCreate } from "../registry/bootstrap_extension.ts";
import type { Extension } from "../registry/registry.ts";
import {
  type EmbeddedControlPlaneConfig,
  embeddedControlPlaneOptions,
  embeddedControlPlanePreflight,
  embeddedControlPlaneSchema,
} from "./embedded_config.ts";

/** nuncio.bootstrap.control_plane. */
export const embeddedControlPlaneExtension: Extension<
  EmbeddedControlPlaneConfig,
  BootstrapExtensionCreate<EmbeddedControlPlaneConfig>
> = {
  name: "nuncio.bootstrap.control_plane",
  typeUrls: ["type.googleapis.com/nuncio.control_plane.v1.EmbeddedControlPlane"],
  category: "bootstrap_extension",
  schema: embeddedControlPlaneSchema as never,
  preflight: embeddedControlPlanePreflight,
  create: async (config, ctx) => {
    // loads only when configured: workers and plain proxies never pay for it
    const { startControlPlane } = await import("./run.ts");
    const handle = await startControlPlane({ ...embeddedControlPlaneOptions(config), stats: ctx.stats });
    ctx.log.info(`embedded control plane: HTTP on port ${handle.port}, gRPC on port ${handle.grpcPort}`);
    return { close: () => handle.close() };
  },
};
