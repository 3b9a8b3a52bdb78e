/**
 * Runtime layers as Envoy builds them: a static layer from a google.protobuf.Struct (dots are tree edges, a
 * mapping with `numerator`/`denominator` or an empty one is a FractionalPercent leaf), a disk layer from a
 * directory tree (each directory a key segment, each regular file a value with `#` comment lines dropped and the
 * last line right-trimmed) and the admin layer (`/runtime_modify` overrides).
 */
import { createEntry, type RuntimeEntry } from "./snapshot.ts";

/** Envoy's bound on disk layer directory depth. */
const MAX_WALK_DEPTH = 16;

/** A Struct scalar or FractionalPercent as Envoy's YAML round trip prints it (the raw string of its entry). */
function yamlOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  if (keys.length === 0) return "{}";
  return keys.map((k) => `${k}: ${yamlOf(o[k])}`).join("\n");
}

/**
 * The entries of a static layer (ProtoLayer::walkProtoValue); throws "Invalid runtime entry value for <key>" on a
 * null or a list, as Envoy rejects the runtime config.
 */
export function staticLayerValues(struct: Record<string, unknown>): Map<string, RuntimeEntry> {
  const out = new Map<string, RuntimeEntry>();
  const walk = (v: unknown, prefix: string): void => {
    if (v === null || v === undefined || Array.isArray(v)) {
      throw new Error(`Invalid runtime entry value for ${prefix}`);
    }
    if (typeof v !== "object") {
      out.set(prefix, createEntry(yamlOf(v)));
      return;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 0 || "numerator" in o || "denominator" in o) {
      out.set(prefix, createEntry(yamlOf(o)));
      return;
    }
    for (const k of keys) walk(o[k], `${prefix}.${k}`);
  };
  for (const k of Object.keys(struct)) walk(struct[k], k);
  return out;
}

/** A runtime file's value: lines starting with `#` dropped, empty lines skipped, the last line right-trimmed. */
export function fileValue(text: string): string {
  const lines = text.split("\n").filter((l) => l.length > 0);
  const last = lines[lines.length - 1];
  let value = "";
  for (const line of lines) {
    if (line.charCodeAt(0) === 35 /* # */) continue;
    // Envoy compares contents: any line equal to the last one is treated as the last
    value += line === last ? line.replace(/[ \t\f\v\n\r]+$/, "") : line + "\n";
  }
  return value;
}

/**
 * The entries of a disk layer rooted at `path` (DiskLayer::walkDirectory): sub-directories add a `.`-separated
 * key segment, regular files are values; symlinks are followed. Throws when the walk is deeper than 16 levels or
 * a directory or file cannot be read (the layer then counts as a load error and is left out).
 */
export function diskLayerValues(path: string): Map<string, RuntimeEntry> {
  const out = new Map<string, RuntimeEntry>();
  const walk = (dir: string, prefix: string, depth: number): void => {
    if (depth > MAX_WALK_DEPTH) throw new Error(`Walk recursion depth exceeded ${MAX_WALK_DEPTH}`);
    for (const e of Deno.readDirSync(dir)) {
      const full = `${dir}/${e.name}`;
      const key = prefix === "" ? e.name : `${prefix}.${e.name}`;
      let info: Deno.FileInfo;
      try {
        info = Deno.statSync(full);
      } catch {
        continue; // a dangling symlink: neither a directory nor a regular file
      }
      if (info.isDirectory) walk(full, key, depth + 1);
      else if (info.isFile) out.set(key, createEntry(fileValue(Deno.readTextFileSync(full))));
    }
  };
  walk(path, "", 1);
  return out;
}

/** The admin layer's overrides (`/runtime_modify`): an empty value removes a key. */
export class AdminLayer {
  readonly values = new Map<string, RuntimeEntry>();
  constructor(readonly name: string) {}

  /** Applies `/runtime_modify` parameters. */
  merge(params: Iterable<[string, string]>): void {
    for (const [k, v] of params) {
      if (v === "") this.values.delete(k);
      else this.values.set(k, createEntry(v));
    }
  }
}
