/**
 * ORIGINAL_DST clusters (Envoy's `original_dst_cluster`): no configured endpoints; each request or connection
 * goes to the address it was originally sent to, the downstream connection's local address as the original_dst
 * (or proxy_protocol) listener filter restored it, or with `original_dst_lb_config.use_http_header` the
 * `x-envoy-original-dst-host` request header (an "ip:port"; Envoy falls back to the connection when it is absent
 * or unparsable). `upstream_port_override` replaces the port. A host is created on first use and kept while it is
 * used: every `cleanup_interval` the hosts no request picked since the previous sweep leave the cluster (their
 * idle pooled connections close). Hosts live per event loop, as in Envoy's per-worker host maps.
 */
import type { Clock, TimerHandle } from "../common/clock.ts";
import type { Logger } from "../common/log.ts";
import type { ClusterImpl } from "./cluster.ts";
import type { ClusterConfig } from "./config.ts";
import type { Discovery } from "./dns_cluster.ts";
import { HostImpl } from "./host.ts";
import type { Host, LbContext } from "./types.ts";
import { ipFamily } from "../common/ip.ts";

/** The parsed `original_dst_lb_config` with Envoy's defaults. */
export interface OriginalDstConfig {
  useHttpHeader: boolean;
  /** Lower-cased header name. */
  httpHeaderName: string;
  /** 0: keep the original port. */
  portOverride: number;
  /** cleanup_interval in ms. */
  cleanupIntervalMs: number;
}

/** Envoy's default request header naming the destination. */
export const ORIGINAL_DST_HEADER = "x-envoy-original-dst-host";

/** The cluster's original_dst_lb_config and cleanup_interval with Envoy's defaults. */
export function originalDstConfig(c: ClusterConfig): OriginalDstConfig {
  const o = c.original_dst_lb_config;
  return {
    useHttpHeader: o?.use_http_header ?? false,
    httpHeaderName: o?.http_header_name ?? ORIGINAL_DST_HEADER,
    portOverride: o?.upstream_port_override ?? 0,
    cleanupIntervalMs: c.cleanup_interval,
  };
}

/** "ip:port" or "[ipv6]:port" to address and port; undefined when it is not an IP literal with a port. */
export function parseIpPort(v: string): { address: string; port: number } | undefined {
  let address: string, port: string;
  if (v.startsWith("[")) {
    const end = v.indexOf("]:");
    if (end < 0) return undefined;
    address = v.slice(1, end);
    port = v.slice(end + 2);
  } else {
    const i = v.lastIndexOf(":");
    if (i < 0 || v.indexOf(":") !== i) return undefined;
    address = v.slice(0, i);
    port = v.slice(i + 1);
  }
  const p = Number(port);
  if (!/^\d{1,5}$/.test(port) || p > 65535 || ipFamily(address) === 0) return undefined;
  return { address, port: p };
}

/** Hosts of one ORIGINAL_DST cluster, created from the destinations requests ask for. */
export class OriginalDstHosts implements Discovery {
  readonly #cluster: ClusterImpl;
  readonly #cfg: OriginalDstConfig;
  readonly #clock: Clock;
  readonly #log?: Logger;
  readonly #hosts = new Map<string, HostImpl>();
  /** Hosts picked since the last sweep. */
  readonly #used = new Set<HostImpl>();
  #timer: TimerHandle | null = null;
  #closed = false;

  constructor(cluster: ClusterImpl, cfg: OriginalDstConfig, deps: { clock: Clock; log?: Logger }) {
    this.#cluster = cluster;
    this.#cfg = cfg;
    this.#clock = deps.clock;
    this.#log = deps.log;
  }

  initialize(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  /** The host for this request's original destination, created on first use; null when it has none. */
  choose(ctx: LbContext): Host | null {
    let dst: { address: string; port: number } | undefined;
    if (this.#cfg.useHttpHeader) {
      const v = ctx.requestHeaders?.get(this.#cfg.httpHeaderName);
      if (v !== undefined && v !== null) {
        dst = parseIpPort(v.trim());
        if (dst === undefined) this.#log?.debug(`${this.#cfg.httpHeaderName} '${v}' is not an ip:port`);
      }
    }
    if (dst === undefined && ctx.originalDst !== undefined) dst = parseIpPort(ctx.originalDst);
    if (dst === undefined) {
      this.#log?.debug(`cluster '${this.#cluster.name}': no original destination for this request`);
      return null;
    }
    if (this.#cfg.portOverride !== 0) dst.port = this.#cfg.portOverride;
    const key = dst.address.includes(":") ? `[${dst.address}]:${dst.port}` : `${dst.address}:${dst.port}`;
    let h = this.#hosts.get(key);
    if (h === undefined) {
      h = new HostImpl(dst.address, dst.port);
      this.#hosts.set(key, h);
      this.#cluster.setHosts([...this.#hosts.values()]);
      this.#log?.debug(`cluster '${this.#cluster.name}': new original destination host ${key}`);
      this.#arm();
    }
    this.#used.add(h);
    return h;
  }

  #arm(): void {
    if (this.#timer !== null || this.#closed) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null;
      this.#sweep();
    }, this.#cfg.cleanupIntervalMs);
    // the sweep alone must not keep the process alive
    // (the system clock's handle is a Node-style Timeout; a test clock's is a plain number)
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Drops the hosts nothing picked since the previous sweep (Envoy's cleanup: unused hosts go). */
  #sweep(): void {
    if (this.#closed) return;
    let removed = 0;
    for (const [key, h] of this.#hosts) {
      if (this.#used.has(h) || h.activeRequests > 0) continue;
      this.#hosts.delete(key);
      removed++;
    }
    this.#used.clear();
    if (removed > 0) this.#cluster.setHosts([...this.#hosts.values()]);
    if (this.#hosts.size > 0) this.#arm();
  }

  /** Hosts currently known (tests). */
  get size(): number {
    return this.#hosts.size;
  }
}
