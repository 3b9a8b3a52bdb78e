/** Schema of the embedded control plane's typed_config (kept apart from the control plane so it loads cheaply). */
import { z } from "zod/mini";
import { address, duration } from "../config/common.ts";
import type { PreflightIssue } from "../registry/registry.ts";
import type { ControlPlaneServiceOptions } from "./run.ts";

const positive = duration.check(z.refine((ms) => ms >= 1, { error: "Expected a positive duration" }));
const path = z.string().check(z.minLength(1));

/** `type.googleapis.com/nuncio.control_plane.v1.EmbeddedControlPlane`. */
export const embeddedControlPlaneSchema = z.strictObject({
  /** Directory of service manifests. */
  manifests: path,
  /** The network team's defaults file. */
  defaults: path,
  /** The edge routes file. */
  edge: z.optional(path),
  /** HTTP port: /mesh, REST xDS, /hds, /load, /inputs, /stats, and the registry's v1 API when it runs here. */
  address,
  /** gRPC port: ADS, per-type xDS, HDS, LRS (point the proxy's own `ads_config` cluster here). */
  grpc_address: address,
  /** A remote registry's base URL; absent: a registry runs here (memory store). */
  registry_url: z.optional(
    z.string().check(z.regex(/^https?:\/\/[^/]+/, { error: "Expected an http:// URL" })),
  ),
  /** How often a remote registry is read (default 5s). */
  registry_refresh: z.optional(positive),
  /** TTL of the in-process registry's hosts (default 600s). */
  ttl: z.optional(positive),
  /** How often input files are checked for changes (default 1s; 0s: never). */
  watch_interval: z.optional(duration),
});

/** The parsed typed_config. */
export type EmbeddedControlPlaneConfig = z.output<typeof embeddedControlPlaneSchema>;

/** The service options a parsed config stands for. */
export function embeddedControlPlaneOptions(c: EmbeddedControlPlaneConfig): ControlPlaneServiceOptions {
  const http = c.address.socket_address; // grpc_address binds the same address (preflight checks)
  const grpc = c.grpc_address.socket_address;
  return {
    paths: {
      manifests: c.manifests,
      defaults: c.defaults,
      ...(c.edge !== undefined ? { edge: c.edge } : {}),
    },
    hostname: http.address,
    port: http.port_value,
    grpcPort: grpc.port_value,
    ...(c.registry_url !== undefined ? { registryUrl: c.registry_url } : {}),
    ...(c.registry_refresh !== undefined ? { registryRefreshMs: c.registry_refresh } : {}),
    ...(c.ttl !== undefined ? { registryTtlMs: c.ttl } : {}),
    ...(c.watch_interval !== undefined ? { watchIntervalMs: c.watch_interval } : {}),
  };
}

/** What serving would fail on: missing inputs, two bind addresses. */
export function embeddedControlPlanePreflight(c: EmbeddedControlPlaneConfig): PreflightIssue[] {
  const out: PreflightIssue[] = [];
  for (const k of ["manifests", "defaults", "edge"] as const) {
    const p = c[k];
    if (p === undefined) continue;
    try {
      Deno.statSync(p);
    } catch (e) {
      out.push({ path: [k], message: `Cannot read ${p}: ${(e as Error).message}` });
    }
  }
  if (c.address.socket_address.address !== c.grpc_address.socket_address.address) {
    out.push({ path: ["grpc_address"], message: "grpc_address must bind the same address as address" });
  }
  return out;
}
