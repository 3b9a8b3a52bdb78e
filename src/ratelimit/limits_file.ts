/**
 * The reference rate-limit service's limits file (envoyproxy/ratelimit YAML): `domain` plus a tree of
 * `descriptors`. Parsed with zod, semantic checks after, every error with file:line:col and field path.
 * A path may be one file or a directory of `*.yaml|*.yml|*.json` files (one domain each).
 */
import { z } from "zod/mini";
import { type Document, LineCounter, parseDocument } from "yaml";
import {
  type ConfigError,
  formatPath,
  NOT_SUPPORTED,
  type PathSegment,
  UNKNOWN_FIELD,
} from "../config/errors.ts";
import { locate } from "../config/positions.ts";
import { notSupportedFields } from "../config/schema_util.ts";
import { Unit, type UnitName } from "./types.ts";

/** One `rate_limit` block as written. */
export interface YamlRateLimit {
  unit?: string;
  requests_per_unit?: number;
  unlimited?: boolean;
  name?: string;
  replaces?: { name: string }[];
}

/** One descriptor as written (nested `descriptors` form the tree). */
export interface YamlDescriptor {
  key: string;
  value?: string;
  rate_limit?: YamlRateLimit;
  shadow_mode?: boolean;
  detailed_metric?: boolean;
  descriptors?: YamlDescriptor[];
}

/** One limits file as written. */
export interface YamlLimitsFile {
  domain: string;
  descriptors?: YamlDescriptor[];
}

const rateLimitSchema = z.strictObject({
  unit: z.optional(z.string()),
  requests_per_unit: z.optional(z.int().check(z.minimum(0), z.maximum(4294967295))),
  unlimited: z.optional(z.boolean()),
  name: z.optional(z.string()),
  replaces: z.optional(z.array(z.strictObject({ name: z.string() }))),
});

const descriptorSchema: z.ZodMiniType<YamlDescriptor> = z.lazy(() =>
  z.strictObject({
    key: z.string(),
    value: z.optional(
      z.union([
        z.string(),
        z.pipe(z.number(), z.transform(String)),
        z.pipe(z.boolean(), z.transform(String)),
      ]),
    ),
    rate_limit: z.optional(rateLimitSchema),
    shadow_mode: z.optional(z.boolean()),
    detailed_metric: z.optional(z.boolean()),
    descriptors: z.pipe(z.nullish(z.array(descriptorSchema)), z.transform((v) => v ?? undefined)),
    ...notSupportedFields(["quota_mode", "value_to_metric", "share_threshold", "metadata"]),
  })
);

const fileSchema = z.strictObject({
  domain: z.string(),
  descriptors: z.pipe(z.nullish(z.array(descriptorSchema)), z.transform((v) => v ?? undefined)),
});

/** A parsed file, or its errors. */
export type LimitsFileResult =
  | { ok: true; file: YamlLimitsFile; name: string }
  | { ok: false; errors: ConfigError[] };

/** Parses a unit name case-insensitively; 0 when unknown. */
export function parseUnit(name: string | undefined): number {
  if (!name) return 0;
  const u = name.toUpperCase();
  return Object.hasOwn(Unit, u) ? Unit[u as UnitName] : 0;
}

/** Parses and checks one limits file's text (runs at load and reload). */
export function parseLimitsText(text: string, fileName: string): LimitsFileResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const p = lines.linePos(e.pos[0]);
        return {
          file: fileName,
          line: p.line,
          column: p.col,
          path: "",
          message: `YAML syntax error: ${e.message}`,
        };
      }),
    };
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    return fail(fileName, (e as Error).message);
  }
  const parsed = fileSchema.safeParse(raw ?? {});
  const at = (path: PathSegment[], message: string, where: "key" | "value" = "value"): ConfigError => {
    const { line, column } = locate(doc as Document, lines, path, where);
    return { file: fileName, line, column, path: formatPath(path), message };
  };
  if (!parsed.success) {
    const errors: ConfigError[] = [];
    for (const issue of parsed.error.issues) {
      const path = issue.path as PathSegment[];
      if (issue.code === "unrecognized_keys") {
        for (const k of issue.keys) errors.push(at([...path, k], UNKNOWN_FIELD, "key"));
      } else {
        errors.push(at(path, issue.message === NOT_SUPPORTED ? NOT_SUPPORTED : capitalize(issue.message)));
      }
    }
    return { ok: false, errors };
  }
  const file = parsed.data;
  const errors: ConfigError[] = [];
  if (file.domain === "") errors.push(at(["domain"], "Config file cannot have an empty domain"));
  checkDescriptors(file.descriptors ?? [], ["descriptors"], (p, m) => errors.push(at(p, m)));
  return errors.length > 0 ? { ok: false, errors } : { ok: true, file, name: fileName };
}

function checkDescriptors(
  list: YamlDescriptor[],
  path: PathSegment[],
  report: (path: PathSegment[], message: string) => void,
): void {
  const seen = new Set<string>();
  list.forEach((d, i) => {
    const here = [...path, i];
    if (d.key === "") report([...here, "key"], "Descriptor has an empty key");
    const composite = d.value !== undefined && d.value !== "" ? `${d.key}_${d.value}` : d.key;
    if (seen.has(composite)) report(here, `Duplicate descriptor composite key "${composite}"`);
    seen.add(composite);
    const rl = d.rate_limit;
    if (rl) {
      const unit = parseUnit(rl.unit);
      if (rl.unlimited) {
        if (unit !== 0) {
          report([...here, "rate_limit", "unit"], "Should not specify a rate limit unit when unlimited");
        }
      } else if (unit === 0) {
        report([...here, "rate_limit", "unit"], `Invalid rate limit unit "${rl.unit ?? ""}"`);
      }
      for (const [j, r] of (rl.replaces ?? []).entries()) {
        if (r.name === "") {
          report([...here, "rate_limit", "replaces", j, "name"], "Replaces entry has an empty name");
        } else if (r.name === rl.name) {
          report(
            [...here, "rate_limit", "replaces", j, "name"],
            "Replaces should not name its own descriptor",
          );
        }
      }
    }
    if (d.descriptors) checkDescriptors(d.descriptors, [...here, "descriptors"], report);
  });
}

function capitalize(s: string): string {
  return s.length > 0 ? s[0].toUpperCase() + s.slice(1) : s;
}

function fail(file: string, message: string): LimitsFileResult {
  return { ok: false, errors: [{ file, line: 0, column: 0, path: "", message }] };
}

/** Files a limits path stands for: the file itself, or a directory's `*.yaml|*.yml|*.json` files sorted. */
export async function listLimitsFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (!info.isDirectory) return [path];
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) {
    if ((e.isFile || e.isSymlink) && /\.(ya?ml|json)$/.test(e.name) && !e.name.startsWith(".")) {
      out.push(`${path.replace(/\/+$/, "")}/${e.name}`);
    }
  }
  return out.sort();
}

/** Reads and parses every file under `path`; any bad file (or a domain defined twice) fails the whole set. */
export async function loadLimitsPath(
  path: string,
): Promise<
  { ok: true; files: { file: YamlLimitsFile; name: string }[] } | { ok: false; errors: ConfigError[] }
> {
  let names: string[];
  try {
    names = await listLimitsFiles(path);
  } catch (e) {
    return {
      ok: false,
      errors: [{ file: path, line: 0, column: 0, path: "", message: (e as Error).message }],
    };
  }
  const files: { file: YamlLimitsFile; name: string }[] = [];
  const errors: ConfigError[] = [];
  const domains = new Map<string, string>();
  for (const name of names) {
    let text: string;
    try {
      text = await Deno.readTextFile(name);
    } catch (e) {
      errors.push({ file: name, line: 0, column: 0, path: "", message: (e as Error).message });
      continue;
    }
    const r = parseLimitsText(text, name);
    if (!r.ok) {
      errors.push(...r.errors);
      continue;
    }
    const prev = domains.get(r.file.domain);
    if (prev !== undefined) {
      errors.push({
        file: name,
        line: 0,
        column: 0,
        path: "domain",
        message: `Duplicate domain "${r.file.domain}" (also in ${prev})`,
      });
      continue;
    }
    domains.set(r.file.domain, name);
    files.push(r);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, files };
}
