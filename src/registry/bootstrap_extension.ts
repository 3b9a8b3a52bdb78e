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
  /** Stops it (at server shutdown, after the data plane). */
  close(): Promise<void>;
}

/** The `create` signature of bootstrap extensions: starts the service; rejects when it cannot start. */
export type BootstrapExtensionCreate<C> = (
  config: C,
  ctx: BootstrapExtensionContext,
) => Promise<BootstrapExtensionHandle>;
