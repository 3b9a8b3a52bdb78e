/**
 * Route config providers (Envoy's RouteConfigProvider): where a connection manager reads its route table per
 * stream. An inline `route_config` is a static provider; `rds` takes a dynamic one from the data plane's
 * RouteConfigRegistry, whose table is swapped whole when a RouteConfiguration arrives, so open keep-alive and
 * HTTP/2 connections see the new routes on their next stream.
 */
import type { Clock } from "../../common/clock.ts";
import { systemClock } from "../../common/clock.ts";
import type { RouteConfiguration } from "./config.ts";
import { compileRouteTable } from "./table.ts";
import type { RouteEntry, RouteTable } from "./types.ts";

/** Where a stream reads its routes: `table` is one property read, swapped whole on update. */
export interface RouteConfigProvider {
  /** The current compiled table (a table matching nothing until the first RouteConfiguration arrives). */
  readonly table: RouteTable;
  /** The route config name (inline: its `name`; RDS: `route_config_name`). */
  readonly name: string;
  /** version_info of the current table ("" for inline configs and before the first update). */
  readonly version: string;
  /** True once a table is in place (always for inline configs). */
  readonly ready: boolean;
  /** Resolves once a table is in place (listener warming). */
  whenReady(): Promise<void>;
}

/** A table that matches nothing: every request gets 404 NR (RDS before its first RouteConfiguration). */
export function emptyRouteTable(name: string): RouteTable {
  return { name, match: (): RouteEntry | null => null };
}

/** Runs at snapshot build for an inline route_config: a provider that never changes. */
export class StaticRouteConfigProvider implements RouteConfigProvider {
  readonly table: RouteTable;
  readonly version = "";
  readonly ready = true;

  constructor(config: RouteConfiguration) {
    this.table = compileRouteTable(config);
  }

  /** The route config name. */
  get name(): string {
    return this.table.name;
  }

  /** Inline routes are always ready. */
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
}

/** An RDS route config: its table is replaced by `RouteConfigRegistry.update`. */
export class DynamicRouteConfigProvider implements RouteConfigProvider {
  table: RouteTable;
  version = "";
  ready = false;
  /** The parsed RouteConfiguration in force (for /config_dump); undefined before the first update. */
  config: RouteConfiguration | undefined;
  /** Wall-clock ms of the last applied update (0 before). */
  lastUpdated = 0;
  #waiters: (() => void)[] = [];

  constructor(readonly name: string) {
    this.table = emptyRouteTable(name);
  }

  /** Resolves once the first RouteConfiguration is in place (at once if it already is). */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Swaps in a compiled table; streams that already matched keep their route. */
  set(table: RouteTable, config: RouteConfiguration, version: string, now: number): void {
    this.table = table;
    this.config = config;
    this.version = version;
    this.lastUpdated = now;
    this.#ready();
  }

  /**
   * The first fetch failed or timed out (Envoy: RDS waits "a bounded period of time until an RDS response (or
   * failure)"): listeners stop warming and serve the empty table (404 NR) until routes arrive.
   */
  giveUp(): void {
    this.#ready();
  }

  #ready(): void {
    if (this.ready) return;
    this.ready = true;
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}

/** Options for RouteConfigRegistry. */
export interface RouteConfigRegistryOptions {
  /** Clock for %START_TIME% in header values and `lastUpdated` (default: the system clock). */
  clock?: Clock;
}

/** One event loop's RDS route configs by route_config_name; every HCM naming one shares its provider. */
export class RouteConfigRegistry {
  readonly #providers = new Map<string, DynamicRouteConfigProvider>();
  readonly #clock: Clock;

  constructor(opts: RouteConfigRegistryOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
  }

  /** Runs when an HCM with `rds` is built: the provider for `name`, created (not ready) on first use. */
  provider(name: string): DynamicRouteConfigProvider {
    let p = this.#providers.get(name);
    if (p === undefined) {
      p = new DynamicRouteConfigProvider(name);
      this.#providers.set(name, p);
    }
    return p;
  }

  /**
   * Runs on an RDS update: compiles `config` and swaps it in for every HCM using `name` (the provider is made
   * if no listener uses it yet). Throws when the table cannot be compiled; the previous table then stays.
   */
  update(name: string, config: RouteConfiguration, version: string): void {
    const table = compileRouteTable(config, { clock: this.#clock });
    this.provider(name).set(table, config, version, this.#clock.now());
  }

  /** Resolves once `name` has its first RouteConfiguration (listener warming). */
  whenReady(name: string): Promise<void> {
    return this.provider(name).whenReady();
  }

  /** The first fetch of `name` failed or timed out: HCMs using it stop waiting (see giveUp). */
  giveUp(name: string): void {
    this.provider(name).giveUp();
  }

  /** True when `name` has a RouteConfiguration. */
  isReady(name: string): boolean {
    return this.#providers.get(name)?.ready ?? false;
  }

  /** Every provider, for /config_dump (dynamic_route_configs). */
  all(): DynamicRouteConfigProvider[] {
    return [...this.#providers.values()];
  }
}
