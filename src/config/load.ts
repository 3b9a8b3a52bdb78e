/**
 * Loads a bootstrap file (YAML or JSON), validates it with the bootstrap schema and reports every
 * problem as `file:line:col: field.path: message`. Opens no sockets and creates no extension factory.
 */
import { type Document, isScalar, LineCounter, parseDocument } from "yaml";
import type { z } from "zod/mini";
import { type Bootstrap, bootstrapSchema, crossValidate } from "./bootstrap.ts";
import {
  type ConfigError,
  type ConfigIssue,
  ConfigIssueError,
  formatConfigError,
  formatPath,
  NOT_SUPPORTED,
  type PathSegment,
  UNKNOWN_FIELD,
} from "./errors.ts";
import { checkJsonSyntax } from "./json_syntax.ts";
import { dropNullFields } from "./normalize.ts";
import { locate, offsetToLineCol, toLineCol } from "./positions.ts";

/** The outcome of loading a config: the parsed bootstrap and the plain document, or every error. */
export type LoadResult =
  | { ok: true; bootstrap: Bootstrap; raw: unknown }
  | { ok: false; errors: ConfigError[] };

/**
 * A pass run on a bootstrap that passed the schema (cluster references, files serving needs); may also throw
 * ConfigIssueError. An asynchronous one needs `loadConfigFile`.
 */
export type CrossCheck = (bootstrap: Bootstrap) => ConfigIssue[] | Promise<ConfigIssue[]>;

/** Options for loading. */
export interface LoadOptions {
  /** "yaml" or "json"; by default from the file name (.json is JSON, anything else YAML). */
  format?: "yaml" | "json";
  /** Extra checks whose issues are positioned like schema errors. */
  crossCheck?: CrossCheck;
}

/** The format a file name implies: ".json" is JSON, everything else (.yaml, .yml) YAML. */
export function formatOf(fileName: string): "yaml" | "json" {
  return fileName.toLowerCase().endsWith(".json") ? "json" : "yaml";
}

/** Parses and validates config text; `fileName` is used for the format and in errors. */
export function loadConfigText(
  text: string,
  fileName: string,
  options: LoadOptions | "yaml" | "json" = {},
): LoadResult {
  const opts: LoadOptions = typeof options === "string" ? { format: options } : options;
  const r = parseConfigText(text, fileName, opts);
  if (!r.ok || !opts.crossCheck) return strip(r);
  const checked = runCrossCheck(opts.crossCheck, r.bootstrap);
  if (checked instanceof Promise) {
    throw new TypeError("An asynchronous crossCheck needs loadConfigTextChecked");
  }
  return strip(withIssues(r, checked, fileName));
}

/** The schema's verdict plus what positions the issues of later passes. */
type Parsed = LoadResult | {
  ok: true;
  bootstrap: Bootstrap;
  raw: unknown;
  doc: Document;
  lines: LineCounter;
};

function parseConfigText(text: string, fileName: string, opts: LoadOptions): Parsed {
  const r = parseDocumentWith(bootstrapSchema, text, fileName, opts.format ?? formatOf(fileName));
  if (!r.ok) return r;
  const parsed = { ok: true as const, bootstrap: r.value, raw: r.raw, doc: r.doc, lines: r.lines };
  return withIssues(parsed, crossValidate(r.value), fileName);
}

/** A document parsed and validated by a schema, kept with what positions later issues in it. */
export type ParsedDocument<T> =
  | { ok: true; value: T; raw: unknown; doc: Document; lines: LineCounter }
  | { ok: false; errors: ConfigError[] };

/**
 * Parses YAML or JSON text and validates it with `schema`, reporting every problem as a positioned
 * ConfigError (the bootstrap's loader, reused by other inputs such as the control plane's manifests).
 */
export function parseDocumentWith<S extends z.ZodMiniType>(
  schema: S,
  text: string,
  fileName: string,
  format: "yaml" | "json" = formatOf(fileName),
): ParsedDocument<z.output<S>> {
  const lines = new LineCounter();
  const empty = () =>
    fail({ file: fileName, line: 1, column: 1, path: "", message: "The config file is empty" });
  if (format === "json") {
    if (text.trim() === "") return empty();
    const bad = checkJsonSyntax(text);
    if (bad) {
      const pos = offsetToLineCol(text, bad.offset);
      return fail({ file: fileName, ...pos, path: "", message: `JSON syntax error: ${bad.message}` });
    }
  }
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => ({
        file: fileName,
        ...toLineCol(lines, e.pos[0]),
        path: "",
        message: `${format === "json" ? "JSON" : "YAML"} syntax error: ${e.message}`,
      })),
    };
  }
  // nothing but whitespace and comments (or a bare null): not an all-defaults bootstrap
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return empty();
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    return fail({ file: fileName, line: 1, column: 1, path: "", message: (e as Error).message });
  }
  raw = dropNullFields(raw); // `field:` with no value is not set, as in protobuf JSON
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) return { ok: false, errors: zodErrors(parsed.error.issues, doc, lines, fileName) };
  return { ok: true, value: parsed.data as z.output<S>, raw, doc, lines };
}

/** Positions issues found after parsing (paths into the document) like schema errors, in file order. */
export function positionIssues(
  r: { doc: Document; lines: LineCounter },
  file: string,
  issues: readonly ConfigIssue[],
): ConfigError[] {
  return issues.map((i) => positioned(r.doc, r.lines, file, i.path, i.message))
    .sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Runs a cross check, turning a thrown ConfigIssueError into its issues. */
function runCrossCheck(check: CrossCheck, b: Bootstrap): ConfigIssue[] | Promise<ConfigIssue[]> {
  const caught = (e: unknown) => {
    if (!(e instanceof ConfigIssueError)) throw e;
    return e.issues;
  };
  try {
    const r = check(b);
    return r instanceof Promise ? r.catch(caught) : r;
  } catch (e) {
    return caught(e);
  }
}

/** The parse result, or the issues of a later pass positioned in the document (in file order). */
function withIssues(r: Parsed, issues: ConfigIssue[], file: string): Parsed {
  if (!r.ok || !("doc" in r)) return r;
  if (issues.length === 0) return r;
  return { ok: false, errors: positionIssues(r, file, issues) };
}

/** Parses and validates config text like loadConfigText, then awaits an asynchronous `crossCheck`. */
export async function loadConfigTextChecked(
  text: string,
  fileName: string,
  options: LoadOptions = {},
): Promise<LoadResult> {
  const r = parseConfigText(text, fileName, options);
  if (!r.ok || !options.crossCheck) return strip(r);
  return strip(withIssues(r, await runCrossCheck(options.crossCheck, r.bootstrap), fileName));
}

/** Reads and loads a config file; a read failure is reported as an error without position. */
export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<LoadResult> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const msg = e instanceof Deno.errors.NotFound ? "Config file not found" : `Cannot read config file: ${e}`;
    return fail({ file: path, line: 0, column: 0, path: "", message: msg });
  }
  return await loadConfigTextChecked(text, path, options);
}

/** Drops the document kept for positioning from a successful result. */
function strip(r: Parsed): LoadResult {
  return r.ok ? { ok: true, bootstrap: r.bootstrap, raw: r.raw } : r;
}

/** `nuncio --mode validate`: prints each error to stderr and returns false, or returns true. */
export async function validateConfigFile(path: string, options: LoadOptions = {}): Promise<boolean> {
  const r = await loadConfigFile(path, options);
  if (r.ok) return true;
  for (const e of r.errors) console.error(formatConfigError(e));
  return false;
}

function fail(e: ConfigError): { ok: false; errors: ConfigError[] } {
  return { ok: false, errors: [e] };
}

const UNRECOGNIZED_RE = /^Unrecognized keys?: (.+)$/;
const MISSING_RE = /received undefined$/;

/** Turns zod issues into positioned errors; unknown keys become one error per key, at the key. */
function zodErrors(
  issues: z.core.$ZodIssue[],
  doc: Document,
  lines: LineCounter,
  file: string,
): ConfigError[] {
  const out: ConfigError[] = [];
  // an object using an alternative nuncio does not support (rds, pipe, eds_cluster_config) reports that field,
  // not the supported alternative it lacks: errors about absent fields next to a not-supported one are dropped
  const unsupportedIn = new Set<string>();
  const absent: { e: ConfigError; parent: string }[] = [];
  for (const issue of issues.flatMap((i) => expandUnion(i, []))) {
    const path = issue.path as PathSegment[];
    let keys: string[] | undefined;
    if (issue.code === "unrecognized_keys") keys = issue.keys;
    else if (issue.code === "custom") keys = parseUnrecognized(issue.message); // re-raised from a typed_config
    if (keys) {
      for (const k of keys) out.push(positioned(doc, lines, file, [...path, k], UNKNOWN_FIELD, "key"));
      continue;
    }
    const e = positioned(doc, lines, file, path, issue.message);
    const parent = formatPath(path.slice(0, -1));
    if (issue.message.startsWith(NOT_SUPPORTED) && path.length > 0) unsupportedIn.add(parent);
    if (isMissing(doc, path)) {
      if (MISSING_RE.test(issue.message)) e.message = "Missing required field";
      absent.push({ e, parent });
    }
    out.push(e);
  }
  const noise = new Set(absent.filter((a) => unsupportedIn.has(a.parent)).map((a) => a.e));
  return out.filter((e) => !noise.has(e)).sort((a, b) => a.line - b.line || a.column - b.column);
}

const RECEIVED_RE = /, received \w+$/;

/**
 * A union's "Invalid input" says little: when exactly one branch accepted the value's type, its issues
 * are the real ones; when none did, the message lists the expected types.
 */
function expandUnion(issue: z.core.$ZodIssue, prefix: PropertyKey[]): z.core.$ZodIssue[] {
  const path = [...prefix, ...issue.path];
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return [{ ...issue, path }];
  const wrongType = (b: z.core.$ZodIssue[]) =>
    b.every((i) => i.code === "invalid_type" && i.path.length === 0);
  const matched = issue.errors.filter((b) => b.length > 0 && !wrongType(b));
  if (matched.length === 1) return matched[0].flatMap((i) => expandUnion(i, path));
  if (matched.length === 0) {
    const expected = [...new Set(issue.errors.flat().map((i) => (i as { expected?: string }).expected))];
    const received = RECEIVED_RE.exec(issue.errors[0][0]?.message ?? "")?.[0] ?? "";
    if (expected.every((x) => x)) {
      return [{ ...issue, path, message: `Invalid input: expected ${expected.join(" or ")}${received}` }];
    }
  }
  return [{ ...issue, path }];
}

function parseUnrecognized(message: string): string[] | undefined {
  const m = UNRECOGNIZED_RE.exec(message);
  if (!m) return undefined;
  try {
    const keys = JSON.parse(`[${m[1]}]`);
    return Array.isArray(keys) && keys.every((k) => typeof k === "string") ? keys : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when the leaf of `path` is absent or null (`key:` with no value) while its parent exists (a missing
 * field, not a missing parent).
 */
function isMissing(doc: Document, path: PathSegment[]): boolean {
  if (path.length === 0) return false;
  return doc.getIn(path) == null && (path.length === 1 || doc.hasIn(path.slice(0, -1)));
}

function positioned(
  doc: Document,
  lines: LineCounter,
  file: string,
  path: readonly PathSegment[],
  message: string,
  at: "key" | "value" = "value",
): ConfigError {
  const { line, column } = locate(doc, lines, path, at);
  return { file, line, column, path: formatPath(path), message };
}
