/**
 * Writes src/extensions/filters/network/kafka_broker/messages.ts: a compact schema table of every Kafka request
 * and response (all API keys, all versions), derived from Apache Kafka's JSON message specs
 * (clients/src/main/resources/common/message/*.json, Apache-2.0). The kafka_broker filter's interpreter
 * (`body_walker.ts`) walks message bodies by this table, as Envoy's generated parsers do.
 *
 * Run by hand when moving to a newer Kafka protocol:
 *   deno run -A tools/gen_kafka_messages.ts --git <apache/kafka git dir> [--rev <commit>]
 *   deno run -A tools/gen_kafka_messages.ts --dir <folder holding the *.json specs> [--source <label>]
 * `--check` writes nothing and exits 1 when the committed table differs from what the specs give.
 * The spec files themselves are not committed; only the table is.
 */
import {
  F_ARRAY,
  F_CAPTURE,
  K_BOOL,
  K_BYTES,
  K_FLOAT64,
  K_INT16,
  K_INT32,
  K_INT64,
  K_INT8,
  K_RECORDS,
  K_STRING,
  K_STRUCT,
  K_UINT16,
  K_UINT32,
  K_UUID,
  NO_VERSION,
} from "../src/extensions/filters/network/kafka_broker/kinds.ts";

const SPEC_PATH = "clients/src/main/resources/common/message";
const OUT = new URL("../src/extensions/filters/network/kafka_broker/messages.ts", import.meta.url).pathname;

interface FieldSpec {
  name: string;
  type: string;
  versions: string;
  nullableVersions?: string;
  tag?: number;
  flexibleVersions?: string;
  fields?: FieldSpec[];
}
interface MessageSpec {
  apiKey?: number;
  type: string;
  name: string;
  validVersions: string;
  flexibleVersions: string;
  fields: FieldSpec[];
  commonStructs?: FieldSpec[];
}

const PRIMITIVES: Record<string, number> = {
  bool: K_BOOL,
  int8: K_INT8,
  int16: K_INT16,
  uint16: K_UINT16,
  int32: K_INT32,
  uint32: K_UINT32,
  int64: K_INT64,
  float64: K_FLOAT64,
  uuid: K_UUID,
  string: K_STRING,
  bytes: K_BYTES,
  records: K_RECORDS,
};

/** Fields whose value the filter reads (message name, field name): Produce acks (0 means no response). */
const CAPTURED = new Set(["ProduceRequest.Acks"]);

/** Strips `//` comments outside string literals (the specs are JSON with comments). */
function stripComments(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") out += text[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else out += c;
  }
  return out;
}

/** "3+" / "0-4" / "2" / "none" -> [from, to] with `to` 32767 for open ranges; none -> NO_VERSION. */
function range(v: string | undefined, max: number): [number, number] {
  if (v === undefined || v === "none") return [NO_VERSION, NO_VERSION];
  if (v.endsWith("+")) return [Number(v.slice(0, -1)), max];
  const dash = v.indexOf("-");
  if (dash > 0) return [Number(v.slice(0, dash)), Number(v.slice(dash + 1))];
  return [Number(v), Number(v)];
}

/** Message name -> Envoy's stat name (`ProduceRequest` -> `produce_request`, Envoy's name_in_c_case). */
export function statName(name: string): string {
  return name.replace(/(.)([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Interns struct layouts so identical ones share an index. */
class StructTable {
  readonly structs: number[][] = [];
  #index = new Map<string, number>();
  add(fields: number[]): number {
    const key = fields.join(",");
    let i = this.#index.get(key);
    if (i === undefined) {
      i = this.structs.length;
      this.structs.push(fields);
      this.#index.set(key, i);
    }
    return i;
  }
}

function compileStruct(
  msg: MessageSpec,
  fields: FieldSpec[],
  common: Map<string, FieldSpec>,
  table: StructTable,
  maxVersion: number,
): number {
  const out: number[] = [];
  for (const f of fields) {
    if (f.tag !== undefined) continue; // tagged fields travel in the tagged-field section, read generically
    if (f.flexibleVersions !== undefined) throw new Error(`${msg.name}.${f.name}: field flexibleVersions`);
    const [vFrom, vTo] = range(f.versions, maxVersion);
    const [nFrom, nTo] = range(f.nullableVersions, maxVersion);
    let type = f.type;
    let flags = 0;
    if (type.startsWith("[]")) {
      flags |= F_ARRAY;
      type = type.slice(2);
    }
    if (CAPTURED.has(`${msg.name}.${f.name}`)) flags |= F_CAPTURE;
    let kind = PRIMITIVES[type];
    let sub = 0;
    if (kind === undefined) {
      kind = K_STRUCT;
      const def = f.fields ?? common.get(type)?.fields;
      if (!def) throw new Error(`${msg.name}.${f.name}: unknown type ${type}`);
      sub = compileStruct(msg, def, common, table, maxVersion);
    }
    out.push(kind | flags, vFrom, vTo, nFrom, nTo, sub);
  }
  return table.add(out);
}

interface Api {
  key: number;
  request: MessageSpec;
  response: MessageSpec;
}

async function readSpecs(args: string[]): Promise<{ files: Map<string, string>; source: string }> {
  const files = new Map<string, string>();
  const git = args.indexOf("--git");
  if (git >= 0) {
    const dir = args[git + 1];
    const revAt = args.indexOf("--rev");
    const rev = revAt >= 0 ? args[revAt + 1] : "HEAD";
    const run = async (...a: string[]) => {
      const r = await new Deno.Command("git", { args: ["--git-dir", dir, ...a], stdout: "piped" }).output();
      if (!r.success) throw new Error(`git ${a.join(" ")} failed`);
      return new TextDecoder().decode(r.stdout);
    };
    const commit = (await run("rev-parse", rev)).trim();
    for (const name of (await run("ls-tree", "--name-only", `${commit}:${SPEC_PATH}`)).split("\n")) {
      if (name.endsWith(".json")) files.set(name, await run("show", `${commit}:${SPEC_PATH}/${name}`));
    }
    return { files, source: `apache/kafka@${commit}` };
  }
  const d = args.indexOf("--dir");
  if (d < 0) throw new Error("Usage: gen_kafka_messages.ts --git <dir> [--rev <commit>] | --dir <specs>");
  const dir = args[d + 1];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".json")) files.set(e.name, await Deno.readTextFile(`${dir}/${e.name}`));
  }
  const s = args.indexOf("--source");
  return { files, source: s >= 0 ? args[s + 1] : dir };
}

async function main(): Promise<void> {
  const { files, source } = await readSpecs(Deno.args);
  const byKey = new Map<number, Partial<Api>>();
  for (const [name, text] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    const spec = JSON.parse(stripComments(text)) as MessageSpec;
    if (spec.type !== "request" && spec.type !== "response") continue;
    if (spec.apiKey === undefined) throw new Error(`${name}: no apiKey`);
    const e = byKey.get(spec.apiKey) ?? { key: spec.apiKey };
    e[spec.type] = spec;
    byKey.set(spec.apiKey, e);
  }
  const table = new StructTable();
  const rows: string[] = [];
  for (const key of [...byKey.keys()].sort((a, b) => a - b)) {
    const api = byKey.get(key)!;
    if (!api.request || !api.response) throw new Error(`API key ${key}: request or response missing`);
    const [min, max] = range(api.request.validVersions, 0);
    const [rMin, rMax] = range(api.response.validVersions, 0);
    if (min !== rMin || max !== rMax) throw new Error(`API key ${key}: request/response versions differ`);
    const flex = (m: MessageSpec) => {
      const [from, to] = range(m.flexibleVersions, max);
      if (from !== NO_VERSION && to !== max) throw new Error(`${m.name}: flexible versions not open-ended`);
      return from;
    };
    const compile = (m: MessageSpec) => {
      const common = new Map((m.commonStructs ?? []).map((c) => [c.name, c]));
      return compileStruct(m, m.fields, common, table, max);
    };
    const req = compile(api.request);
    const resp = compile(api.response);
    rows.push(
      `  [${key}, ${JSON.stringify(statName(api.request.name))}, ${
        JSON.stringify(statName(api.response.name))
      }, ` +
        `${min}, ${max}, ${flex(api.request)}, ${flex(api.response)}, ${req}, ${resp}],`,
    );
  }
  const text = `// deno-fmt-ignore-file
// Generated by tools/gen_kafka_messages.ts from Apache Kafka's JSON message specs (${source}). Do not edit.
import type { ApiRow } from "./kinds.ts";

/** [api_key, request stat, response stat, min version, max version, first flexible request version,
 * first flexible response version (-1: none), request struct, response struct], by api_key. */
export const APIS: readonly ApiRow[] = [
${rows.join("\n")}
];

/** Struct layouts: 6 numbers per field (kind|flags, versions from, to, nullable from, to, struct index). */
export const STRUCTS: readonly (readonly number[])[] = [
${table.structs.map((s) => `  [${s.join(",")}],`).join("\n")}
];
`;
  if (Deno.args.includes("--check")) {
    const committed = await Deno.readTextFile(OUT).catch(() => "");
    if (committed !== text) {
      console.error(`${OUT} differs from what ${source} gives: run without --check`);
      Deno.exit(1);
    }
    return;
  }
  await Deno.writeTextFile(OUT, text);
  console.log(`Wrote ${OUT}: ${rows.length} APIs, ${table.structs.length} struct layouts from ${source}`);
}

if (import.meta.main) await main();
