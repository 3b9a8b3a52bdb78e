/** Test helpers for access logging: a FactoryContext with a real stats store and a manual clock. */
import { type Clock, ManualClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { Logger } from "../common/log.ts";
import { TimerWheel } from "../common/timer_wheel.ts";
import type { FactoryContext } from "../network/filter.ts";
import { registry } from "../registry/registry.ts";
import { StatsStore } from "../stats/store.ts";
import type { ClusterManager } from "../upstream/types.ts";

const noClusters: ClusterManager = {
  get: () => undefined,
  all: () => [],
  initialize: () => Promise.resolve(),
  close: () => {},
};

/** A FactoryContext for tests (fresh store; ManualClock unless given). */
export function testContext(clock: Clock = new ManualClock()): FactoryContext {
  const stats = new StatsStore();
  return {
    stats,
    listenerScope: stats.scope("listener.test"),
    clusterManager: noClusters,
    clock,
    timers: new TimerWheel(clock),
    registry,
    log: new Logger("test"),
    node: { id: "node", cluster: "cluster" },
    shared: SharedArena.create({ bytes: 1024 * 1024, capacity: 1024 }),
  };
}
