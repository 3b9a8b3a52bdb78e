/**
 * Host health shared by every thread: one SharedArena slot per host (`host/<cluster>/<key>`) holding Envoy's
 * health flag bits and the outlier detector's counters, and one per cluster (`health/<cluster>`) holding a
 * generation bumped on any health change. The main thread decides health (active checks, outlier sweeps);
 * workers report request outcomes with Atomics and rebuild their load balancers when the generation moves.
 */
import type { SharedArena } from "../../common/shared_arena.ts";

/** Envoy's Host::HealthFlag bits (shared ones live in the slot; EDS and dynamic-removal bits are per thread). */
export const HealthFlag = {
  FAILED_ACTIVE_HC: 1,
  FAILED_OUTLIER_CHECK: 2,
  FAILED_EDS_HEALTH: 4,
  DEGRADED_ACTIVE_HC: 8,
  PENDING_DYNAMIC_REMOVAL: 16,
  PENDING_ACTIVE_HC: 32,
  EXCLUDED_VIA_IMMEDIATE_HC_FAIL: 64,
  ACTIVE_HC_TIMEOUT: 128,
  /** EDS health_status DEGRADED (per thread): used only when a priority lacks healthy hosts. */
  DEGRADED_EDS_HEALTH: 256,
} as const;

/** Flags that take a host out of the healthy set. */
export const UNHEALTHY_MASK = HealthFlag.FAILED_ACTIVE_HC | HealthFlag.FAILED_OUTLIER_CHECK |
  HealthFlag.FAILED_EDS_HEALTH;

/** Flags that make a (not unhealthy) host degraded. */
export const DEGRADED_MASK = HealthFlag.DEGRADED_ACTIVE_HC | HealthFlag.DEGRADED_EDS_HEALTH;

/** Set once a slot got its initial flags (a zeroed slot is "never initialised"). */
export const SLOT_INITIALIZED = 1 << 30;

/** Int32 indices of a host slot. */
export const HostSlot = {
  FLAGS: 0,
  /** Ejection time multiplier (grows on ejection, decays while healthy). */
  BACKOFF: 1,
  /** Times ejected in total. */
  NUM_EJECTIONS: 2,
  CONSECUTIVE_5XX: 3,
  CONSECUTIVE_GATEWAY: 4,
  /** Non-5xx answers since the last sweep. */
  RQ_SUCCESS: 5,
  /** Answers since the last sweep. */
  RQ_TOTAL: 6,
  /** Float64 indices (of the Float64 view) start after 8 Int32s. */
  INT32S: 14,
} as const;

/** Float64 indices of a host slot's Float64 view. */
export const HostF64 = {
  /** Wall-clock ms of the last ejection. */
  EJECTED_AT: 4,
  /** Wall-clock ms of the last un-ejection (0: never). */
  UNEJECTED_AT: 5,
  /** Success rate 0..100 of the last sweep, -1 when not computed. */
  SUCCESS_RATE: 6,
} as const;

/** Int32 indices of a cluster slot. */
export const ClusterSlot = {
  GENERATION: 0,
  /** Hosts currently ejected by outlier detection. */
  EJECTIONS_ACTIVE: 1,
  /** Set to 1 once any thread opened an upstream connection (health checks leave no_traffic_interval). */
  TRAFFIC: 2,
  INT32S: 4,
} as const;

/** One host's shared memory: Int32 fields (Atomics) and a Float64 view of the same bytes. */
export interface HostHealthSlot {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
}

/** The shared health memory of one cluster (cheap to build; slots are found by name in the arena). */
export class ClusterHealthState {
  /** GENERATION, EJECTIONS_ACTIVE, TRAFFIC; a private copy once `release`d (read it through the state). */
  slot: Int32Array;
  readonly #arena: SharedArena;
  readonly #prefix: string;
  readonly #clusterKey: string;
  readonly #initialFlags: number;
  #released = false;

  /**
   * Finds (or creates) the cluster slot; new hosts start with `initialFlags` (config time). `variant` (a
   * digest of the health config, "" for none) gives a cluster whose health config changed fresh slots.
   */
  constructor(arena: SharedArena, cluster: string, initialFlags: number, variant = "") {
    this.#arena = arena;
    const name = variant === "" ? cluster : `${cluster}#${variant}`;
    this.#prefix = `host/${name}/`;
    this.#clusterKey = `health/${name}`;
    this.#initialFlags = initialFlags | SLOT_INITIALIZED;
    this.slot = arena.slot(this.#clusterKey, ClusterSlot.INT32S);
  }

  /**
   * Gives back this thread's use of the cluster slot (the cluster left, or its health config changed): later
   * writes by requests still in flight land in a private copy. Idempotent; host slots are released by hosts.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const copy = new Int32Array(ClusterSlot.INT32S);
    copy.set(this.slot);
    this.slot = copy;
    this.#arena.release(this.#clusterKey);
  }

  /** The slot of the host keyed `key`; the first thread to see it stores the initial flags. */
  host(key: string): HostHealthSlot {
    const i32 = this.#arena.slot(this.#prefix + key, HostSlot.INT32S);
    if (Atomics.compareExchange(i32, HostSlot.FLAGS, 0, this.#initialFlags) === 0) {
      const f64 = new Float64Array(i32.buffer, i32.byteOffset, HostSlot.INT32S / 2);
      f64[HostF64.SUCCESS_RATE] = -1;
      return { i32, f64 };
    }
    return { i32, f64: new Float64Array(i32.buffer, i32.byteOffset, HostSlot.INT32S / 2) };
  }

  /**
   * Gives back a host's slot (it left the cluster): returns a private copy of its current state for the
   * host object, so late writes by requests still in flight land there, not in memory the arena reuses.
   */
  releaseHost(key: string, slot: HostHealthSlot): HostHealthSlot {
    const i32 = new Int32Array(HostSlot.INT32S);
    i32.set(slot.i32);
    this.#arena.release(this.#prefix + key);
    return { i32, f64: new Float64Array(i32.buffer, 0, HostSlot.INT32S / 2) };
  }

  /** Current generation (one Atomics.load; workers compare it on every pick). */
  generation(): number {
    return Atomics.load(this.slot, ClusterSlot.GENERATION);
  }

  /** Announces a health change to every thread. */
  bump(): void {
    Atomics.add(this.slot, ClusterSlot.GENERATION, 1);
  }
}

/** Health flags of a slot without the bookkeeping bit. */
export function sharedFlags(slot: HostHealthSlot): number {
  return Atomics.load(slot.i32, HostSlot.FLAGS) & ~SLOT_INITIALIZED;
}

/** Envoy's text names of flag bits, in /clusters order. */
export const FLAG_NAMES: readonly [number, string][] = [
  [HealthFlag.FAILED_ACTIVE_HC, "failed_active_hc"],
  [HealthFlag.FAILED_OUTLIER_CHECK, "failed_outlier_check"],
  [HealthFlag.FAILED_EDS_HEALTH, "failed_eds_health"],
  [HealthFlag.DEGRADED_ACTIVE_HC, "degraded_active_hc"],
  [HealthFlag.PENDING_DYNAMIC_REMOVAL, "pending_dynamic_removal"],
  [HealthFlag.PENDING_ACTIVE_HC, "pending_active_hc"],
  [HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL, "excluded_via_immediate_hc_fail"],
  [HealthFlag.ACTIVE_HC_TIMEOUT, "active_hc_timeout"],
  [HealthFlag.DEGRADED_EDS_HEALTH, "degraded_eds_health"],
];

/** The flag names set in `flags` (empty when healthy). */
export function flagNames(flags: number): string[] {
  const out: string[] = [];
  for (const [bit, name] of FLAG_NAMES) if (flags & bit) out.push(name);
  return out;
}
