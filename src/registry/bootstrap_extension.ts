/** Contract of `bootstrap_extensions`: services started on the main thread before the data plane. */
import type { Logger } from "../common/log.ts";
import type { StatsStore } from "../stats/store.ts";

/** What a bootstrap extension gets when it starts. */
export interface BootstrapExtensionContext {
  /** The main thread's stats store (shown on the admin port). */
  readonly stats: StatsStore;
  /** Logger named after the extension. */
  readonly log: Logger;
}

/** A started bootstrap extension. */
export interface BootstrapExtensionHandle {
  /**
   * Optional: called first thing at server shutdown, before any listener starts draining, for work that must
   * happen while the proxy still takes new connections (deregistering, so registries and load balancers stop
   * sending new work first). Should not reject; `close()` still follows and must be safe after it.
   */
  drain?(): Promise<void>;
  /** Stops it (at server shutdown, after the data plane); idempotent. */
  close(): Promise<void>;
}

/** The `create` signature of bootstrap extensions: starts the service; rejects when it cannot start. */
export type BootstrapExtensionCreate<C> = (
  config: C,
  ctx: BootstrapExtensionContext,
) => Promise<BootstrapExtensionHandle>;
