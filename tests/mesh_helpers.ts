/** Pieces the mesh end-to-end tests share: a proxy's tiny ADS bootstrap and distinct free ports. */
import { restartablePort } from "./peers.ts";

/** A socket address on 127.0.0.1. */
export function loopback(port: number): Record<string, unknown> {
  return { socket_address: { address: "127.0.0.1", port_value: port } };
}

/** A gRPC ApiConfigSource on the static cluster `xds`. */
export const XDS_GRPC = {
  api_type: "GRPC",
  transport_api_version: "V3",
  grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
};

/**
 * A tiny bootstrap: node, admin on `adminPort`, all xDS over ADS from a control plane on 127.0.0.1:`grpcPort`
 * (with `central`, HDS and LRS too); `extra` is merged at the top (bootstrap_extensions, ...).
 */
export function adsBootstrap(
  node: { id: string; cluster: string },
  adminPort: number,
  grpcPort: number,
  extra: Record<string, unknown> = {},
  central = false,
): string {
  return JSON.stringify({
    node,
    admin: { address: loopback(adminPort) },
    ...(central ? { hds_config: XDS_GRPC, cluster_manager: { load_stats_config: XDS_GRPC } } : {}),
    ...extra,
    dynamic_resources: {
      ads_config: XDS_GRPC,
      cds_config: { ads: {}, resource_api_version: "V3" },
      lds_config: { ads: {}, resource_api_version: "V3" },
    },
    static_resources: {
      clusters: [{
        name: "xds",
        type: "STATIC",
        connect_timeout: "1s",
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            explicit_http_config: { http2_protocol_options: {} },
          },
        },
        load_assignment: {
          cluster_name: "xds",
          endpoints: [{ lb_endpoints: [{ endpoint: { address: loopback(grpcPort) } }] }],
        },
      }],
    },
  });
}

/**
 * `n` different free ports on 127.0.0.1, below the ephemeral range (restartablePort: the mesh tests restart
 * servers on the same ports).
 */
export function distinctPorts(n: number): number[] {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(restartablePort());
  return [...ports];
}

/** GET with a given Host header, over a raw connection (HTTP/1.1, Connection: close). */
export async function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
  try {
    await conn.write(
      new TextEncoder().encode(`GET ${u.pathname} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`),
    );
    const raw = new TextDecoder().decode(await new Response(conn.readable).arrayBuffer());
    const [head, body = ""] = raw.split("\r\n\r\n");
    return { status: Number(head.split(" ")[1]), body };
  } catch (e) {
    try {
      conn.close();
    } catch {
      // closed by the readable
    }
    throw e;
  }
}

/** Waits until the nuncio whose admin listens on `adminPort` answers /ready with LIVE. */
export async function waitLive(adminPort: number, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const live = await fetch(`http://127.0.0.1:${adminPort}/ready`).then((r) => r.text()).then(
      (t) => t === "LIVE\n",
      () => false,
    );
    if (live) return;
    if (Date.now() > end) throw new Error(`Timed out waiting for /ready LIVE on ${adminPort}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Checks a host of `service` at 127.0.0.1:`port` in to the registry's v1 API on `httpPort`; the status. */
export async function checkIn(
  httpPort: number,
  service: string,
  port: number,
  tags: Record<string, unknown> = {},
): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${httpPort}/v1/registration/${service}`, {
    method: "POST",
    body: JSON.stringify({ ip: "127.0.0.1", port, revision: "r1", service_repo_name: service, tags }),
  });
  await r.body?.cancel();
  return r.status;
}
