/**
 * Envoy's `--config-yaml` and `--service-cluster|node|zone`: YAML merged over the `-c` file with protobuf
 * MergeFrom semantics (scalars replace, messages merge field by field, repeated fields append), node fields
 * overridden, then validated as one bootstrap. Errors point into the text each field came from: the file,
 * or `--config-yaml:line:col`.
 */
import { type Document, isScalar, LineCounter, parseDocument } from "yaml";
import { dropNullFields } from "./normalize.ts";
import {
  type ConfigError,
  type ConfigIssue,
  ConfigIssueError,
  formatPath,
  type PathSegment,
  UNKNOWN_FIELD,
} from "./errors.ts";
import {
  loadConfigFile,
  loadConfigText,
  loadConfigTextChecked,
  type LoadOptions,
  type LoadResult,
} from "./load.ts";
import { locate } from "./positions.ts";

/** How `--config-yaml` is named in errors. */
export const OVERLAY_NAME = "--config-yaml";

/** Node fields set by `--service-node` (id), `--service-cluster` (cluster) and `--service-zone` (locality.zone). */
export interface NodeOverrides {
  id?: string;
  cluster?: string;
  zone?: string;
}

/** Where the bootstrap comes from: a file, YAML from the command line, or both; plus node overrides. */
export interface ConfigSource {
  path?: string;
  overlayYaml?: string;
  node?: NodeOverrides;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Protobuf MergeFrom on plain config data: returns a new value, inputs untouched. */
export function mergeFrom(base: unknown, overlay: unknown): unknown {
  return mergeTracked(base, overlay, [], () => {});
}

/** An Any (`"@type"`) of another type replaces the base one whole; same type merges like a message. */
function sameAnyType(a: Obj, b: Obj): boolean {
  return !("@type" in a) || !("@type" in b) || a["@type"] === b["@type"];
}

function mergeTracked(
  base: unknown,
  over: unknown,
  path: PathSegment[],
  fromOverlay: (out: PathSegment[], src: PathSegment[], value: unknown) => void,
  src: PathSegment[] = path,
): unknown {
  if (isObj(base) && isObj(over) && sameAnyType(base, over)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(over)) {
      out[k] = k in base ? mergeTracked(base[k], v, [...path, k], fromOverlay, [...src, k]) : v;
      if (!(k in base)) fromOverlay([...path, k], [...src, k], v);
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(over)) {
    over.forEach((v, i) => fromOverlay([...path, base.length + i], [...src, i], v));
    return [...base, ...over];
  }
  fromOverlay(path, src, over);
  return over;
}

/** Sets node.id / node.cluster / node.locality.zone on a bootstrap (new objects, input untouched). */
export function applyNodeOverrides(bootstrap: Obj, node: NodeOverrides): Obj {
  const n: Obj = isObj(bootstrap.node) ? { ...bootstrap.node } : {};
  if (node.id !== undefined) n.id = node.id;
  if (node.cluster !== undefined) n.cluster = node.cluster;
  if (node.zone !== undefined) n.locality = { ...(isObj(n.locality) ? n.locality : {}), zone: node.zone };
  return { ...bootstrap, node: n };
}

interface Origin {
  doc: Document;
  lines: LineCounter;
  file: string;
  path: PathSegment[];
}

interface Parsed {
  doc: Document;
  lines: LineCounter;
  value: unknown;
}

function parse(text: string): Parsed | null {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
  if (doc.errors.length > 0) return null;
  try {
    return { doc, lines, value: doc.toJS({ maxAliasCount: 1000 }) ?? {} };
  } catch {
    return null;
  }
}

/** True when a YAML document holds nothing (empty or comments only, or a bare null). */
function emptyDocument(doc: Document): boolean {
  return doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null);
}

function hasNode(n: NodeOverrides | undefined): boolean {
  return n !== undefined && (n.id !== undefined || n.cluster !== undefined || n.zone !== undefined);
}

/**
 * Loads a bootstrap from a ConfigSource (main thread and every worker): the file alone goes straight to
 * loadConfigFile; with --config-yaml or node overrides the merged document is validated as a whole.
 */
export async function loadConfigSource(src: ConfigSource, opts: LoadOptions = {}): Promise<LoadResult> {
  const overlay = src.overlayYaml;
  if (src.path !== undefined && overlay === undefined && !hasNode(src.node)) {
    return await loadConfigFile(src.path, opts);
  }
  let baseText: string;
  let baseName: string;
  let overText: string | undefined;
  if (src.path === undefined) {
    baseText = overlay ?? "";
    baseName = OVERLAY_NAME;
  } else {
    try {
      baseText = await Deno.readTextFile(src.path);
    } catch {
      return await loadConfigFile(src.path, opts); // reports the read error as the plain path does
    }
    baseName = src.path;
    overText = overlay;
  }
  const baseOpts: LoadOptions = src.path === undefined ? { ...opts, format: "yaml" } : opts;
  const base = parse(baseText);
  // syntax errors and an empty file are reported exactly as for the file alone
  if (!base || emptyDocument(base.doc)) return await loadConfigTextChecked(baseText, baseName, baseOpts);
  const over = overText === undefined ? undefined : parse(overText);
  if (over === null) return loadConfigText(overText!, OVERLAY_NAME, { format: "yaml" });
  if (!isObj(base.value) || (over && !isObj(over.value))) {
    const name = !isObj(base.value) ? baseName : OVERLAY_NAME;
    return {
      ok: false,
      errors: [{ file: name, line: 1, column: 1, path: "", message: "A bootstrap must be a mapping" }],
    };
  }
  // where each merged field came from, keyed by its formatted path
  const origins = new Map<string, Origin>();
  const record = (p: Parsed, file: string) => (out: PathSegment[], from: PathSegment[], v: unknown) => {
    walk(v, out, from, (o, f) => origins.set(formatPath(o), { doc: p.doc, lines: p.lines, file, path: f }));
  };
  record(base, baseName)([], [], base.value);
  let merged = base.value as Obj;
  // a key written with no value in --config-yaml is not set (protobuf MergeFrom leaves the base field alone)
  if (over) merged = mergeTracked(merged, dropNullFields(over.value), [], record(over, OVERLAY_NAME)) as Obj;
  if (src.node && hasNode(src.node)) merged = applyNodeOverrides(merged, src.node);
  const { crossCheck, ...schemaOnly } = opts;
  const r = loadConfigText(JSON.stringify(merged), baseName, { ...schemaOnly, format: "json" });
  if (!r.ok) return { ok: false, errors: r.errors.map((e) => reposition(e, origins, baseName)) };
  if (!crossCheck) return r;
  // the cross check runs here (it may be asynchronous), its issues positioned like schema errors
  let issues: ConfigIssue[];
  try {
    issues = await crossCheck(r.bootstrap);
  } catch (e) {
    if (!(e instanceof ConfigIssueError)) throw e;
    issues = e.issues;
  }
  if (issues.length === 0) return r;
  const errors = issues.map((i) =>
    reposition(
      { file: baseName, line: 0, column: 0, path: formatPath(i.path), message: i.message },
      origins,
      baseName,
    )
  );
  return { ok: false, errors: errors.sort((a, b) => a.line - b.line || a.column - b.column) };
}

function walk(
  v: unknown,
  out: PathSegment[],
  from: PathSegment[],
  visit: (out: PathSegment[], from: PathSegment[]) => void,
): void {
  visit(out, from);
  if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...out, i], [...from, i], visit));
  else if (isObj(v)) { for (const [k, x] of Object.entries(v)) walk(x, [...out, k], [...from, k], visit); }
}

/** Points an error found in the merged document at the text its field came from. */
function reposition(e: ConfigError, origins: Map<string, Origin>, fallback: string): ConfigError {
  let best: Origin | undefined;
  let bestLen = -1;
  for (const [k, o] of origins) {
    const covers = k === "" || e.path === k || e.path.startsWith(k + ".") || e.path.startsWith(k + "[");
    if (covers && k.length > bestLen) {
      best = o;
      bestLen = k.length;
    }
  }
  if (!best) return { ...e, file: fallback };
  const at = e.message === UNKNOWN_FIELD && bestLen === e.path.length ? "key" : "value";
  const { line, column } = locate(best.doc, best.lines, best.path, at);
  return { ...e, file: best.file, line, column };
}
