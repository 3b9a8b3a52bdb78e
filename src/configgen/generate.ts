/**
 * `nuncio configgen`'s work, in three steps the CLI runs in order: `planOutputs` (inputs -> build -> one
 * static bootstrap per node and the templates' outputs, all in memory), `validateOutputs` (each bootstrap
 * exactly as `nuncio --mode validate` checks a file: schema, then the pre-serve checks) and `writeOutputs`
 * (only once everything passed). Same inputs, same bytes.
 */
import { type ConfigError, formatConfigError } from "../config/errors.ts";
import { loadConfigTextChecked } from "../config/load.ts";
import { build } from "../control_plane/builder.ts";
import { type InputSet, loadInputs } from "../control_plane/inputs.ts";
import { preServeChecks } from "../server/pre_serve_checks.ts";
import { secrets } from "../transport/secret.ts";
import {
  bootstrapText,
  isGenerated,
  REGISTRY_CLUSTER,
  type RegistryAddress,
  staticBootstrap,
} from "./bootstrap.ts";
import { loadTemplates, renderTemplates } from "./templates.ts";

/** What the command line asked for. */
export interface ConfiggenOptions {
  manifests: string;
  defaults: string;
  edge?: string;
  out: string;
  /** The registry as given (`HOST:PORT`) and parsed. */
  registryText: string;
  registry: RegistryAddress;
  templates?: string;
  adminPort: number;
}

/** One file to write. */
export interface Output {
  /** `<out>/<node>.yaml` or `<out>/<node>/<template output>`. */
  path: string;
  text: string;
  /** Checked as a bootstrap before anything is written (.yaml, .yml, .json). */
  validate: boolean;
  /** The template it was rendered from (absent for the bootstraps configgen builds itself). */
  template?: string;
}

/** Outputs, or the reasons there are none (each one line or a few). */
export type Plan = { ok: true; outputs: Output[] } | { ok: false; errors: string[] };

/** Reads the inputs and renders every output in memory; input, build and template errors end it. */
export async function planOutputs(o: ConfiggenOptions): Promise<Plan> {
  const inputs = await loadInputs({ manifests: o.manifests, defaults: o.defaults, edge: o.edge });
  if (inputs.errors.length > 0) return { ok: false, errors: inputs.errors.map(formatConfigError) };
  const defaults = inputs.defaults!.value;
  const manifests = new Map([...inputs.manifests].map(([k, v]) => [k, v.value]));
  const edge = inputs.edge?.value;
  const { nodes } = build({ defaults, manifests, edge });
  const outputs: Output[] = [];
  try {
    for (const [node, cfg] of nodes) {
      const doc = staticBootstrap(node, cfg, { defaults, registry: o.registry, adminPort: o.adminPort });
      const text = bootstrapText(doc, inputFlags(o), notes(inputs, node));
      outputs.push({ path: `${o.out}/${node}.yaml`, text, validate: true });
    }
  } catch (e) {
    return { ok: false, errors: [(e as Error).message] };
  }
  if (o.templates === undefined) return { ok: true, outputs };
  let set;
  try {
    set = await loadTemplates(o.templates);
  } catch (e) {
    return { ok: false, errors: [`${o.templates}: Cannot read the templates: ${(e as Error).message}`] };
  }
  const byName = Object.fromEntries([...manifests].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
  const registry = { ...o.registry, address: o.registryText, cluster: REGISTRY_CLUSTER };
  const contexts = new Map([...nodes].map(([node, resources]) => [node, {
    node,
    service: manifests.get(node) ?? null,
    manifests: byName,
    defaults,
    edge: edge ?? null,
    resources,
    registry,
  }]));
  const r = renderTemplates(set, contexts);
  if (!r.ok) return r;
  for (const x of r.outputs) {
    outputs.push({
      path: `${o.out}/${x.path}`,
      text: x.text,
      validate: /\.(ya?ml|json)$/i.test(x.path),
      template: `${o.templates}/${x.template}`,
    });
  }
  return { ok: true, outputs };
}

/** The inputs a bootstrap came from, as flags (its first line). */
function inputFlags(o: ConfiggenOptions): string {
  return [
    `--manifests ${o.manifests}`,
    `--defaults ${o.defaults}`,
    ...(o.edge !== undefined ? [`--edge ${o.edge}`] : []),
    `--registry ${o.registryText}`,
    `--admin-port ${o.adminPort}`,
  ].join(" ");
}

/** The comment lines under the first: what the node is and how its proxies name themselves; never a time. */
function notes(inputs: InputSet, node: string): string[] {
  const from = inputs.manifests.get(node)?.file ?? inputs.edge?.file;
  return [
    `Do not edit: regenerate. Node ${node}${from ? ` (${from})` : ""}: every proxy of it runs this file and`,
    `sets its own node.id with --service-node, e.g. nuncio -c ${node}.yaml --service-node ${node}-1`,
  ];
}

/** Every validated output checked as `nuncio --mode validate` would; resolves to the error lines. */
export async function validateOutputs(outputs: readonly Output[]): Promise<string[]> {
  const errors: string[] = [];
  for (const out of outputs) {
    if (!out.validate) continue;
    // each file on its own, as separate `--mode validate` runs: the checks install static secrets globally
    secrets.clear();
    let r;
    try {
      r = await loadConfigTextChecked(out.text, out.path, { crossCheck: preServeChecks });
    } catch (e) {
      errors.push(`${out.path}: Cannot be checked: ${(e as Error).message}`);
      continue;
    }
    if (r.ok) continue;
    const from = out.template ? ` (rendered from ${out.template})` : "";
    errors.push(...r.errors.map((e: ConfigError) => `${formatConfigError(e)}${from}`));
  }
  secrets.clear();
  return errors;
}

/**
 * Writes the outputs under `out` (created), each through a temporary file renamed into place, leaving files
 * whose bytes are already right untouched; removes `<out>/*.yaml` bootstraps an earlier run wrote
 * (`isGenerated`) that this run no longer makes. Resolves to one line per file.
 */
export async function writeOutputs(out: string, outputs: readonly Output[]): Promise<string[]> {
  const lines: string[] = [];
  await Deno.mkdir(out, { recursive: true });
  for (const o of outputs) {
    const dir = o.path.slice(0, o.path.lastIndexOf("/"));
    if (dir !== out) await Deno.mkdir(dir, { recursive: true });
    if (await readOrNull(o.path) === o.text) {
      lines.push(`unchanged ${o.path}`);
      continue;
    }
    const tmp = `${o.path}.configgen-tmp`;
    await Deno.writeTextFile(tmp, o.text);
    await Deno.rename(tmp, o.path);
    lines.push(`wrote ${o.path}`);
  }
  const keep = new Set(outputs.map((o) => o.path));
  const stale: string[] = [];
  for await (const e of Deno.readDir(out)) {
    const path = `${out}/${e.name}`;
    if (!e.isFile || !e.name.endsWith(".yaml") || keep.has(path)) continue;
    const text = await readOrNull(path);
    if (text !== null && isGenerated(text)) stale.push(path);
  }
  for (const path of stale.sort()) {
    await Deno.remove(path);
    lines.push(`removed ${path}`);
  }
  return lines;
}

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
