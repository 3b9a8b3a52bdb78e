/** Maps a cluster's lb_policy (and its *_lb_config) to a load balancer built over a host list. */
import type { ClusterConfig } from "../config.ts";
import type { Host } from "../types.ts";
import type { LoadBalancer, Random } from "./lb.ts";
import { createLeastRequestLb } from "./least_request.ts";
import { MaglevLb } from "./maglev.ts";
import { createRandomLb } from "./random.ts";
import { RingHashLb } from "./ring_hash.ts";
import { createRoundRobinLb } from "./round_robin.ts";
import { runtime } from "../../runtime/current.ts";

/** Returns a builder for `config`'s LB policy; the cluster calls it whenever membership or health changes. */
export function lbBuilder(config: ClusterConfig, random: Random): (hosts: readonly Host[]) => LoadBalancer {
  switch (config.lb_policy) {
    case "ROUND_ROBIN":
      return (hosts) => createRoundRobinLb(hosts);
    case "LEAST_REQUEST": {
      const choiceCount = config.least_request_lb_config?.choice_count ?? 2;
      const bias = config.least_request_lb_config?.active_request_bias;
      if (bias === undefined || !bias.runtime_key) {
        const opts = { choiceCount, activeRequestBias: bias?.default_value ?? 1 };
        return (hosts) => createLeastRequestLb(hosts, random, opts);
      }
      // a RuntimeDouble: read at each rebuild (membership, health or runtime change), as Envoy reads it on refresh
      const key = bias.runtime_key, dflt = bias.default_value;
      return (hosts) => {
        const activeRequestBias = runtime().getDouble(key, dflt);
        return createLeastRequestLb(hosts, random, { choiceCount, activeRequestBias });
      };
    }
    case "RANDOM":
      return (hosts) => createRandomLb(hosts, random);
    case "RING_HASH": {
      const opts = {
        minimumRingSize: config.ring_hash_lb_config?.minimum_ring_size ?? 1024,
        maximumRingSize: config.ring_hash_lb_config?.maximum_ring_size ?? 8_388_608,
      };
      return (hosts) => new RingHashLb(hosts, random, opts);
    }
    case "MAGLEV": {
      const size = config.maglev_lb_config?.table_size ?? 65537;
      return (hosts) => new MaglevLb(hosts, random, size);
    }
    case "CLUSTER_PROVIDED":
      // ORIGINAL_DST: the cluster picks the host itself (upstream/original_dst.ts); a list LB serves /clusters
      return (hosts) => createRoundRobinLb(hosts);
  }
}
