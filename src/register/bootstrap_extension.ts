/**
 * `bootstrap_extensions` entry with which the proxy checks its local service in to the registry itself, so a
 * host needs no separate `nuncio register` agent; the host is deregistered (DELETE) when the proxy stops, before
 * its listeners drain (so the registry stops sending new work first):
 *
 *   bootstrap_extensions:
 *   - name: nuncio.bootstrap.register
 *     typed_config:
 *       "@type": type.googleapis.com/nuncio.register.v1.Register
 *       service: users
 *       port: 9211
 *       registry_url: http://discovery.internal:8080
 *       every: 60s
 *       tags: { az: us-east-1a, canary: false }
 *       health_url: http://127.0.0.1:9211/healthcheck
 */
import type { Extension } from "../registry/registry.ts";
import type { BootstrapExtensionCreate } from "../registry/bootstrap_extension.ts";
import { type RegisterConfig, registerOptions, registerSchema } from "./config.ts";

/** nuncio.bootstrap.register: starts a RegistrationAgent on the main thread; its handle's drain deregisters. */
export const registerExtension: Extension<RegisterConfig, BootstrapExtensionCreate<RegisterConfig>> = {
  name: "nuncio.bootstrap.register",
  typeUrls: ["type.googleapis.com/nuncio.register.v1.Register"],
  category: "bootstrap_extension",
  schema: registerSchema as never,
  create: async (config, ctx) => {
    // the agent loads only when configured
    const { RegistrationAgent } = await import("./agent.ts");
    const agent = new RegistrationAgent(registerOptions(config), { log: ctx.log, stats: ctx.stats });
    // the first check-in runs in the background: an unreachable registry never delays or fails the proxy's start
    agent.start();
    // drain: deregister before the listeners drain; close (after them) is then a no-op (stop is idempotent)
    return { drain: () => agent.stop(), close: () => agent.stop() };
  },
};
