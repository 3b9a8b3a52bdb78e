/**
 * The network team's own templates (`--templates DIR`), in Jinja syntax rendered with nunjucks: every
 * `*.j2`, `*.njk` and `*.jinja` file renders once per node into `<node>/<name without that extension>`; files
 * whose name starts with `_` are only included. Autoescape is off and an undefined value printed is an error
 * naming the template, line and column (nunjucks' throwOnUndefined: a missing value passed through a filter
 * or looped over is not). Everything is read first and rendered in memory: nothing here writes.
 */
import nunjucks from "nunjucks";
import { durationText } from "../control_plane/builder.ts";
import { yamlText } from "./bootstrap.ts";

/** Extensions of the templates that render (the rest of the directory may be included). */
const TEMPLATE_RE = /\.(j2|njk|jinja)$/;

/** The templates of a directory: every file's text by name (`a/b.yaml.j2`), and those that render. */
export interface TemplateSet {
  dir: string;
  sources: Map<string, string>;
  /** Names that render once per node, sorted. */
  renderable: string[];
}

/** One rendered output: `<node>/<path>`. */
export interface Rendered {
  node: string;
  template: string;
  /** Relative output path: `<node>/<template name without extension>`. */
  path: string;
  text: string;
}

/** Reads every file under `dir` (recursively; dot files skipped); throws when it cannot. */
export async function loadTemplates(dir: string): Promise<TemplateSet> {
  const sources = new Map<string, string>();
  const walk = async (sub: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(sub ? `${dir}/${sub}` : dir)) entries.push(e);
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const name = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await walk(name);
      else if (e.isFile) sources.set(name, await Deno.readTextFile(`${dir}/${name}`));
    }
  };
  await walk("");
  const renderable = [...sources.keys()].filter((n) => TEMPLATE_RE.test(n) && !basename(n).startsWith("_"));
  return { dir, sources, renderable };
}

/** A template's output path: its name without the template extension. */
export function outputName(template: string): string {
  return template.replace(TEMPLATE_RE, "");
}

/** `a/./b/../c` -> `a/c` (names of templates relative to the directory). */
function joinName(path: string): string {
  const out: string[] = [];
  for (const seg of path.split("/")) {
    if (seg === "..") out.pop();
    else if (seg !== "." && seg !== "") out.push(seg);
  }
  return out.join("/");
}

function basename(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

interface NunjucksEnv {
  render(name: string, ctx: Record<string, unknown>): string;
  addFilter(name: string, fn: (...args: never[]) => unknown): void;
}

/** Filters configgen adds to nunjucks' own: `to_yaml`, `to_json(indent?)` and `duration` (ms -> "1.5s"). */
function environment(set: TemplateSet): NunjucksEnv {
  const loader = {
    getSource: (name: string) => {
      const src = set.sources.get(name);
      return src === undefined ? null : { src, path: name, noCache: true };
    },
    isRelative: (name: string) => name.startsWith("./") || name.startsWith("../"),
    resolve: (parent: string, name: string) => joinName(parent.slice(0, parent.lastIndexOf("/") + 1) + name),
  };
  const env = new nunjucks.Environment(loader, { autoescape: false, throwOnUndefined: true }) as NunjucksEnv;
  env.addFilter("to_yaml", (v: unknown) => yamlText(v).trimEnd());
  env.addFilter("to_json", (v: unknown, indent?: number) => JSON.stringify(v, null, indent));
  env.addFilter("duration", (ms: number) => durationText(ms));
  return env;
}

/**
 * Renders every template for every node (`contexts`: node -> template context, in output order). Returns the
 * outputs, or the errors (`DIR/template:line:col: message (rendering T for node N)`, the first failing node
 * of each template only). An output that is only whitespace is skipped: a template may apply to some nodes.
 */
export function renderTemplates(
  set: TemplateSet,
  contexts: ReadonlyMap<string, Record<string, unknown>>,
): { ok: true; outputs: Rendered[] } | { ok: false; errors: string[] } {
  const env = environment(set);
  const outputs: Rendered[] = [];
  const errors: string[] = [];
  const claimed = new Map<string, string>();
  for (const t of set.renderable) {
    const prior = claimed.get(outputName(t));
    if (prior !== undefined) errors.push(`${set.dir}/${t}: Renders to ${outputName(t)} like ${prior}`);
    claimed.set(outputName(t), t);
  }
  if (errors.length > 0) return { ok: false, errors };
  for (const template of set.renderable) {
    for (const [node, ctx] of contexts) {
      let text: string;
      try {
        text = env.render(template, ctx);
      } catch (e) {
        errors.push(`${templateError(set, e as Error)} (rendering ${template} for node ${node})`);
        break;
      }
      if (text.trim() === "") continue;
      outputs.push({ node, template, path: `${node}/${outputName(template)}`, text });
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, outputs };
}

// nunjucks' messages: "(name) [Line L, Column C]\n  message", nested once per include
const WHERE_RE = /\(([^()\n]+)\)(?: \[Line (\d+)(?:, Column (\d+))?\])?\n +/g;
const UNDEFINED_OUTPUT = "attempted to output null or undefined value";

/** `DIR/name:line:col: message` of the innermost template a nunjucks error names. */
export function templateError(set: TemplateSet, e: Error): string {
  let name = "", line = 0, col = 0, end = 0;
  for (const m of e.message.matchAll(WHERE_RE)) {
    name = m[1];
    line = Number(m[2] ?? 0);
    col = Number(m[3] ?? 0);
    end = m.index + m[0].length;
  }
  let message = e.message.slice(end).replace(/^Template render error: /, "");
  // nunjucks positions wrapped runtime errors ("Error: ...") 0-based, its own checks and the parser 1-based
  if (/^\w*Error: /.test(message)) {
    if (line > 0) [line, col] = [line + 1, col + 1];
    message = message.replace(/^\w*Error: /, "");
  }
  if (message === UNDEFINED_OUTPUT) {
    const expr = expressionAt(set.sources.get(name), line, col);
    message = expr ? `Undefined value: {{ ${expr} }}` : "Undefined value";
  }
  const where = line > 0 ? `:${line}${col > 0 ? `:${col}` : ""}` : "";
  return `${name ? `${set.dir}/${name}` : set.dir}${where}: ${message}`;
}

/** The expression of the `{{ ... }}` at 1-based `line`:`col` of `src`, if there is one. */
function expressionAt(src: string | undefined, line: number, col: number): string | undefined {
  const text = src?.split("\n")[line - 1]?.slice(Math.max(0, col - 1));
  return text ? /^\{\{-?\s*(.*?)\s*-?\}\}/.exec(text)?.[1] : undefined;
}
