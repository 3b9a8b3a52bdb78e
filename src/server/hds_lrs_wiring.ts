/**
 * Starts the bootstrap's `hds_config` (health discovery: src/xds/hds_client.ts) and
 * `cluster_manager.load_stats_config` (load reporting: src/xds/lrs_client.ts) clients on the main thread, once
 * the cluster manager that owns health exists (their management clusters are static clusters of it). The
 * client modules, and with them the protobuf codec, load only when one of the two is configured.
 */
import type { SharedArena } from "../common/shared_arena.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import type { Scope, StatsSnapshot } from "../stats/store.ts";
import type { ClusterManager } from "../upstream/types.ts";
import { xdsNode } from "../xds/client.ts";
import type { ClusterAddress } from "../xds/types.ts";

/** What the HDS and LRS clients need from the server. */
export interface HdsLrsDeps {
  bootstrap: Bootstrap;
  /** The main thread's root stats scope (`hds_delegate.`, `load_reporter.`). */
  stats: Scope;
  /** The cluster manager that owns health (the in-process plane's, or the main thread's membership view). */
  owner: ClusterManager;
  /** The process's shared arena (HDS host health slots). */
  arena: SharedArena;
  /** Every event loop's stats, summed (LRS reads its figures there). */
  snapshot: () => Promise<StatsSnapshot>;
}

/** The running clients; `close` stops them (Server.stop). */
export interface HdsLrsHandle {
  close(): Promise<void>;
}

/** Runs at start: resolves a static management cluster to the address of a host (a healthy one first). */
export function managementAddress(
  bootstrap: Bootstrap,
  owner: ClusterManager,
  name: string,
): ClusterAddress | undefined {
  const hosts = owner.get(name)?.hosts() ?? [];
  const h = hosts.find((x) => x.healthy) ?? hosts[0];
  if (!h) return undefined;
  const config = bootstrap.static_resources.clusters.find((c) => c.name === name) as
    | { transport_socket?: { kind?: string } }
    | undefined;
  return { host: h.address, port: h.port, tls: config?.transport_socket?.kind === "tls" };
}

/** The locality all hosts of `cluster` share ("region/zone/sub_zone" keys), if they share one. */
function sharedLocality(owner: ClusterManager, cluster: string) {
  const keys = new Set(
    (owner.get(cluster)?.hosts() ?? []).map((h) => (h as { locality?: string }).locality ?? ""),
  );
  if (keys.size !== 1) return undefined;
  const [key] = keys;
  if (key === "" || key === "//") return undefined;
  const [region, zone, sub_zone] = key.split("/");
  return {
    ...(region ? { region } : {}),
    ...(zone ? { zone } : {}),
    ...(sub_zone ? { sub_zone } : {}),
  };
}

/** Starts the clients the bootstrap configures; undefined when it configures neither. */
export async function startHdsLrs(d: HdsLrsDeps): Promise<HdsLrsHandle | undefined> {
  const hdsSource = d.bootstrap.hds_config;
  const lrsSource = d.bootstrap.cluster_manager?.load_stats_config;
  if (!hdsSource && !lrsSource) return undefined;
  const node = xdsNode(d.bootstrap.node);
  const resolveCluster = (name: string) => managementAddress(d.bootstrap, d.owner, name);
  const closers: (() => Promise<void>)[] = [];
  if (hdsSource) {
    const { HdsClient } = await import("../xds/hds_client.ts");
    const hds = new HdsClient(hdsSource, { node, resolveCluster, stats: d.stats, arena: d.arena });
    hds.start();
    closers.push(() => hds.close());
  }
  if (lrsSource) {
    const { LrsClient, samplesFromStats } = await import("../xds/lrs_client.ts");
    const lrs = new LrsClient(lrsSource, {
      node,
      resolveCluster,
      stats: d.stats,
      sample: async () => {
        const snapshot = await d.snapshot();
        const clusters = d.owner.all().map((c) => ({
          name: c.name,
          locality: sharedLocality(d.owner, c.name),
        }));
        return samplesFromStats(snapshot, clusters);
      },
    });
    lrs.start();
    closers.push(() => lrs.close());
  }
  return { close: async () => void await Promise.all(closers.map((c) => c())) };
}
