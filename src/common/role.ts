/** The life of a standalone role (`nuncio ratelimit`, `nuncio discovery`): start, serve until a signal, close. */
import { Logger } from "./log.ts";

/** Something a role started; closed on SIGINT/SIGTERM. */
export interface RoleHandle {
  close(): Promise<void>;
}

/**
 * Starts a role with `start`, serves until SIGINT or SIGTERM, then closes it; resolves to the exit code (1 with
 * one line when it cannot start, 0 after a clean stop). `what` names it in messages ("the registry").
 */
export async function runUntilSignal(
  what: string,
  logger: string,
  start: () => Promise<RoleHandle>,
): Promise<number> {
  let handle: RoleHandle;
  try {
    handle = await start();
  } catch (e) {
    console.error(`Failed to start ${what}: ${(e as Error).message}`);
    return 1;
  }
  const { promise: quit, resolve } = Promise.withResolvers<void>();
  const onSignal = () => resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await quit;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  new Logger(logger).info("shutting down");
  await handle.close();
  return 0;
}
