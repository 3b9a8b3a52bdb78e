/**
 * Prometheus text exposition (v0.0.4) of a StatsSnapshot, converted the way Envoy does it:
 * default tags extracted into labels, names prefixed `envoy_` with invalid characters turned
 * into `_`, histograms as cumulative `_bucket{le}` series plus `_sum` and `_count`.
 * Counters keep Envoy's names, so `promtool check metrics` lints counters not ending in `_total`
 * (a naming lint, not a format error); every family carries `# HELP` and `# TYPE`.
 */
import { selectHistograms, selectScalars, type StatsQuery } from "./format.ts";
import { type HistogramSnapshot, type StatsSnapshot, SUPPORTED_BUCKETS } from "./store.ts";
import { activeTagProducer, type Tag, type TagProducer } from "./tags.ts";

const INVALID = /[^a-zA-Z0-9_]/g;

/** Envoy's metric name conversion: `envoy_` + the name with every invalid character replaced by `_`. */
export function prometheusName(name: string): string {
  return "envoy_" + name.replace(INVALID, "_");
}

/** A label name from a tag name ("envoy.cluster_name" -> "envoy_cluster_name"). */
function labelName(tag: string): string {
  const n = tag.replace(INVALID, "_");
  return /^[0-9]/.test(n) ? "_" + n : n;
}

/** Escapes a label value (backslash, double quote and newline). */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c));
}

function formatLabels(tags: readonly Tag[], extra?: string): string {
  let s = "";
  for (const t of tags) s += `${s ? "," : ""}${labelName(t.name)}="${escapeLabelValue(t.value)}"`;
  if (extra) s += (s ? "," : "") + extra;
  return s ? `{${s}}` : "";
}

/** A sample value in exposition syntax. */
function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

interface Family<T> {
  readonly name: string;
  readonly help: string;
  readonly samples: { labels: readonly Tag[]; value: T; labelKey: string }[];
}

/** Groups stats by their tag-extracted metric name, sorted by family then labels. */
function group<T>(entries: [string, T][], tags: TagProducer): Family<T>[] {
  const families = new Map<string, Family<T>>();
  for (const [stat, value] of entries) {
    const ex = tags.extract(stat);
    const name = prometheusName(ex.name);
    let f = families.get(name);
    if (!f) families.set(name, f = { name, help: ex.name, samples: [] });
    f.samples.push({ labels: ex.tags, value, labelKey: formatLabels(ex.tags) });
  }
  const out = [...families.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const f of out) {
    f.samples.sort((a, b) => (a.labelKey < b.labelKey ? -1 : a.labelKey > b.labelKey ? 1 : 0));
  }
  return out;
}

/**
 * The `/stats/prometheus` body for a snapshot; `q` applies `filter` (on Envoy names) and `usedonly`. Labels come
 * from `tags` (default: the running server's stats_config, else Envoy's default tags); histogram buckets from
 * each histogram's bounds (histogram_bucket_settings).
 */
export function formatPrometheus(
  snap: StatsSnapshot,
  q: StatsQuery = {},
  tags: TagProducer = activeTagProducer(),
): string {
  const parts: string[] = [];
  const seen = new Set<string>();
  const counters: [string, number][] = [];
  const gauges: [string, number][] = [];
  for (const e of selectScalars(snap, q)) (e[0] in snap.counters ? counters : gauges).push(e);
  writeScalars(parts, seen, group(counters, tags), "counter");
  writeScalars(parts, seen, group(gauges, tags), "gauge");
  writeHistograms(parts, seen, group(selectHistograms(snap, q), tags));
  return parts.join("");
}

function writeScalars(parts: string[], seen: Set<string>, fams: Family<number>[], type: string): void {
  for (const f of fams) {
    // A family name taken by another type would make the exposition invalid: first one wins.
    if (seen.has(f.name)) continue;
    seen.add(f.name);
    parts.push(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${type}\n`);
    for (const s of f.samples) parts.push(`${f.name}${s.labelKey} ${formatValue(s.value)}\n`);
  }
}

function writeHistograms(parts: string[], seen: Set<string>, fams: Family<HistogramSnapshot>[]): void {
  for (const f of fams) {
    if (seen.has(f.name)) continue;
    seen.add(f.name);
    parts.push(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} histogram\n`);
    for (const s of f.samples) {
      const h = s.value;
      const bounds = h.bounds ?? SUPPORTED_BUCKETS;
      let cum = 0;
      for (let i = 0; i < bounds.length; i++) {
        cum += h.buckets[i] ?? 0;
        parts.push(`${f.name}_bucket${formatLabels(s.labels, `le="${bounds[i]}"`)} ${formatValue(cum)}\n`);
      }
      parts.push(`${f.name}_bucket${formatLabels(s.labels, 'le="+Inf"')} ${formatValue(h.count)}\n`);
      parts.push(`${f.name}_sum${s.labelKey} ${formatValue(h.sum)}\n`);
      parts.push(`${f.name}_count${s.labelKey} ${formatValue(h.count)}\n`);
    }
  }
}
