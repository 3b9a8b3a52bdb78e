/** What the admin endpoints `/runtime` and `/runtime_modify` show and do, as Envoy's RuntimeHandler. */
import type { RuntimeSnapshot } from "./snapshot.ts";

/** One key of /runtime: its raw value in each layer ("" where absent) and the last non-empty one. */
export interface RuntimeEntryView {
  final_value: string;
  layer_values: string[];
}

/** The /runtime document: `entries` (keys sorted) and `layers` (loaded layer names, in order). */
export interface RuntimeView {
  entries: Record<string, RuntimeEntryView>;
  layers: string[];
}

/** Builds /runtime's JSON from a snapshot's layers (disk layers whose directory is missing are not listed). */
export function runtimeView(s: RuntimeSnapshot): RuntimeView {
  const keys = new Set<string>();
  for (const l of s.layers) for (const k of l.values.keys()) keys.add(k);
  const entries: Record<string, RuntimeEntryView> = {};
  for (const k of [...keys].sort()) {
    const layerValues = s.layers.map((l) => l.values.get(k)?.raw ?? "");
    let final = "";
    for (const v of layerValues) if (v !== "") final = v;
    entries[k] = { final_value: final, layer_values: layerValues };
  }
  return { entries, layers: s.layers.map((l) => l.name) };
}

/** What the admin API needs from the runtime (AdminDeps.runtime). */
export interface RuntimeAdmin {
  /** The /runtime document of the current snapshot. */
  view(): RuntimeView;
  /**
   * Applies `/runtime_modify` parameters to the admin layer and resolves once every event loop has the new
   * snapshot; rejects with NoAdminLayerError ("No admin layer specified") when there is no admin layer.
   */
  modify(params: [string, string][]): Promise<void>;
}
