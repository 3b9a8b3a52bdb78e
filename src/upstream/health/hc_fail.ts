/**
 * The server-wide "failing health checks" switch (admin POST /healthcheck/fail and /healthcheck/ok), one
 * Int32 in the SharedArena so the health_check filter on every worker sees the flip with one Atomics.load.
 */
import type { SharedArena } from "../../common/shared_arena.ts";

const KEY = "server/health_check_failed";

/** The switch's slot (index 0: 1 when failing); find it at config time. */
export function healthCheckFailSlot(arena: SharedArena): Int32Array {
  return arena.slot(KEY, 2);
}

/** True while the server fails health checks (per request: one Atomics.load). */
export function healthCheckFailed(slot: Int32Array): boolean {
  return Atomics.load(slot, 0) === 1;
}

/** Flips the switch (admin). */
export function setHealthCheckFailed(arena: SharedArena, failed: boolean): void {
  Atomics.store(healthCheckFailSlot(arena), 0, failed ? 1 : 0);
}
