/**
 * envoy.filters.http.health_check: answers other proxies' health checks (requests matching `headers`). Without
 * pass-through it replies 200 itself, or 503 while the server fails health checks (admin /healthcheck/fail);
 * with pass-through the request goes on to the service unless the server is failing. While failing, every
 * other response carries `x-envoy-immediate-health-check-fail: true` so downstream Envoys drop this host at
 * once; health check responses carry `x-envoy-upstream-healthchecked-cluster` (the node's cluster).
 */
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
  type HttpResponse,
} from "../../../../http/filter.ts";
import { HeaderMatch } from "../../../../http/routing/matchers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import { healthCheckFailed, healthCheckFailSlot } from "../../../../upstream/health/hc_fail.ts";
import type { HealthCheckFilterConfig } from "./config.ts";

/** The filter's per-snapshot factory (matchers compiled, switch slot found, at config time). */
export class HealthCheckFilterFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly passThrough: boolean;
  readonly matchers: readonly HeaderMatch[];
  readonly failSlot: Int32Array;
  readonly localCluster: string;

  constructor(config: HealthCheckFilterConfig, ctx: FactoryContext) {
    this.passThrough = config.pass_through_mode;
    this.matchers = config.headers.map((h) => new HeaderMatch(h));
    this.failSlot = healthCheckFailSlot(ctx.shared);
    this.localCluster = ctx.node.cluster;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new HealthCheckFilter(this, cb);
  }
}

class HealthCheckFilter implements HttpFilter {
  readonly #f: HealthCheckFilterFactory;
  readonly #cb: HttpFilterCallbacks;
  #healthCheck = false;

  constructor(f: HealthCheckFilterFactory, cb: HttpFilterCallbacks) {
    this.#f = f;
    this.#cb = cb;
  }

  decodeHeaders(endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const f = this.#f;
    const req = this.#cb.request;
    for (const m of f.matchers) if (!m.match(req)) return HttpFilterStatus.Continue;
    this.#healthCheck = true;
    if (!f.passThrough) return endStream ? this.#complete() : HttpFilterStatus.StopIteration;
    if (healthCheckFailed(f.failSlot)) return this.#reply(503, "health_check_failed");
    return HttpFilterStatus.Continue;
  }

  decodeData(_data: Uint8Array, endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    if (!this.#healthCheck || this.#f.passThrough) return HttpFilterStatus.Continue;
    return endStream ? this.#complete() : HttpFilterStatus.StopIteration;
  }

  decodeTrailers(): HttpFilterStatus | Promise<HttpFilterStatus> {
    if (!this.#healthCheck || this.#f.passThrough) return HttpFilterStatus.Continue;
    return this.#complete();
  }

  encodeHeaders(res: HttpResponse): HttpFilterStatus {
    if (this.#healthCheck) {
      if (this.#f.localCluster !== "") {
        res.headers.set("x-envoy-upstream-healthchecked-cluster", this.#f.localCluster);
      }
    } else if (healthCheckFailed(this.#f.failSlot)) {
      res.headers.set("x-envoy-immediate-health-check-fail", "true");
    }
    return HttpFilterStatus.Continue;
  }

  #complete(): Promise<HttpFilterStatus> {
    return healthCheckFailed(this.#f.failSlot)
      ? this.#reply(503, "health_check_failed")
      : this.#reply(200, "health_check_ok");
  }

  async #reply(status: number, details: string): Promise<HttpFilterStatus> {
    await this.#cb.sendLocalReply(status, "", { details });
    return HttpFilterStatus.StopIteration;
  }
}
