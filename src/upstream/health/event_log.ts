/** Health check event log (`event_log_path`): one JSON HealthCheckEvent per line, as Envoy writes them. */
import type { HostImpl } from "../host.ts";

const encoder = new TextEncoder();

/** Failure types of HealthCheckEvent (envoy.data.core.v3.HealthCheckFailureType). */
export type HealthCheckFailureType = "ACTIVE" | "PASSIVE" | "NETWORK" | "NETWORK_TIMEOUT";

/** Writes events for one checker; events are rare, so each is one synchronous append. */
export class HealthEventLogger {
  #file: Deno.FsFile | null;
  readonly #type: string;
  readonly #cluster: string;
  readonly #now: () => number;

  /** Opens `path` for appending (config time; throws when it cannot). */
  constructor(path: string, opts: { type: string; cluster: string; now: () => number }) {
    this.#file = Deno.openSync(path, { append: true, create: true });
    this.#type = opts.type;
    this.#cluster = opts.cluster;
    this.#now = opts.now;
  }

  /** The host became unhealthy. */
  ejectUnhealthy(host: HostImpl, failureType: HealthCheckFailureType): void {
    this.#write(host, "eject_unhealthy_event", { failure_type: failureType });
  }

  /** The host became healthy (`firstCheck` when on its very first check). */
  addHealthy(host: HostImpl, firstCheck: boolean): void {
    this.#write(host, "add_healthy_event", { first_check: firstCheck });
  }

  /** A check failed (first check, or every failure with always_log_health_check_failures). */
  failure(host: HostImpl, failureType: HealthCheckFailureType, firstCheck: boolean): void {
    this.#write(host, "health_check_failure_event", { failure_type: failureType, first_check: firstCheck });
  }

  /** A check passed (with always_log_health_check_success). */
  success(host: HostImpl): void {
    this.#write(host, "successful_health_check_event", {});
  }

  /** The host became degraded. */
  degraded(host: HostImpl): void {
    this.#write(host, "degraded_healthy_host", {});
  }

  /** The host is no longer degraded. */
  noLongerDegraded(host: HostImpl): void {
    this.#write(host, "no_longer_degraded_host", {});
  }

  #write(host: HostImpl, key: string, body: Record<string, unknown>): void {
    if (this.#file === null) return;
    const event = {
      health_checker_type: this.#type,
      host: {
        socket_address: { protocol: "TCP", address: host.address, port_value: host.port },
      },
      cluster_name: this.#cluster,
      [key]: body,
      timestamp: new Date(this.#now()).toISOString(),
    };
    try {
      this.#file.writeSync(encoder.encode(JSON.stringify(event) + "\n"));
    } catch {
      // the log is best effort
    }
  }

  /** Closes the file. */
  close(): void {
    try {
      this.#file?.close();
    } catch {
      // already closed
    }
    this.#file = null;
  }
}
