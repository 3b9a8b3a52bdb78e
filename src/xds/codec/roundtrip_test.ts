/**
 * Real configs through the wire: every listener and cluster of tests/envoy_examples/*.yaml and config/*.yaml that
 * nuncio's schema accepts is encoded as Envoy's protobuf, decoded back, and must parse to the same config.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import "../../registry/builtin.ts";
import { listenerSchema } from "../../config/listener.ts";
import { clusterSchema } from "../../upstream/config.ts";
import { dropNullFields } from "../../config/normalize.ts";
import { decodeAny, encodeAny } from "./mod.ts";

const LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener";
const CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

/** A parsed config as comparable JSON: extensions by name, functions dropped, Maps and RegExps spelled out. */
export function canonical(v: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof v === "function") return undefined;
  if (typeof v === "bigint") return `${v}n`;
  if (v === null || typeof v !== "object") return v;
  if (seen.has(v)) return "[circular]";
  seen.add(v);
  try {
    if (v instanceof RegExp) return `/${v.source}/${v.flags}`;
    if (v instanceof Map) return [...v].map(([k, x]) => [canonical(k, seen), canonical(x, seen)]);
    if (v instanceof Set) return [...v].map((x) => canonical(x, seen));
    if (ArrayBuffer.isView(v)) return Array.from(v as Uint8Array);
    if (Array.isArray(v)) return v.map((x) => canonical(x, seen));
    const o = v as Record<string, unknown>;
    // an Extension (registry entry): its name is what a config chose
    if (typeof o.name === "string" && "category" in o && "create" in o) return `ext:${o.name}`;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) {
      const x = canonical(o[k], seen);
      if (x !== undefined) out[k] = x;
    }
    return out;
  } finally {
    seen.delete(v);
  }
}

/**
 * Drops keys whose value is false, 0, "" or []: proto3 cannot tell such a scalar from an unset one, so a schema
 * that keeps `false` as written but leaves an absent field undefined parses the two differently (same meaning).
 */
function withoutProto3Defaults(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutProto3Defaults);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === false || x === 0 || x === "" || (Array.isArray(x) && x.length === 0)) continue;
    out[k] = withoutProto3Defaults(x);
  }
  return out;
}

/**
 * Resources whose round trip fails because a nuncio schema requires a proto3 scalar that the wire leaves out
 * when it is 0 (Envoy reads it as 0): `where` -> the issues seen. Remove an entry once its schema defaults it.
 */
const KNOWN_SCHEMA_GAPS: Record<string, string[]> = {};

interface Case {
  file: string;
  kind: "listener" | "cluster";
  index: number;
  yaml: Record<string, unknown>;
}

async function cases(): Promise<Case[]> {
  const out: Case[] = [];
  for (const dir of ["../../../tests/envoy_examples/", "../../../config/"]) {
    const base = new URL(dir, import.meta.url);
    for await (const e of Deno.readDir(base)) {
      if (!e.isFile || !/\.ya?ml$/.test(e.name)) continue;
      let doc: Record<string, unknown>;
      try {
        doc = dropNullFields(parse(await Deno.readTextFile(new URL(e.name, base)))) as Record<
          string,
          unknown
        >;
      } catch {
        continue;
      }
      const sr = (doc?.static_resources ?? {}) as Record<string, unknown[]>;
      for (const kind of ["listener", "cluster"] as const) {
        ((sr[`${kind}s`] ?? []) as Record<string, unknown>[]).forEach((yaml, index) =>
          out.push({ file: e.name, kind, index, yaml })
        );
      }
    }
  }
  return out.sort((a, b) => `${a.file}${a.kind}${a.index}`.localeCompare(`${b.file}${b.kind}${b.index}`));
}

Deno.test("listeners and clusters of real configs parse the same after a protobuf round trip", async () => {
  let checked = 0;
  for (const c of await cases()) {
    const schema = c.kind === "listener" ? listenerSchema : clusterSchema;
    const direct = schema.safeParse(c.yaml);
    // nuncio's own extensions have no Envoy message; configs nuncio rejects are not the codec's business
    if (!direct.success || JSON.stringify(c.yaml).includes("googleapis.com/nuncio.")) continue;
    const where = `${c.file} ${c.kind}s[${c.index}]`;
    const url = c.kind === "listener" ? LISTENER : CLUSTER;
    const decoded = decodeAny(url, encodeAny(url, c.yaml));
    assert.equal(decoded["@type"], url);
    const { "@type": _t, ...fields } = decoded;
    const again = schema.safeParse(fields);
    if (KNOWN_SCHEMA_GAPS[where]) {
      assert.deepEqual(
        again.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`),
        KNOWN_SCHEMA_GAPS[where],
      );
      continue;
    }
    assert.ok(again.success, `${where}: ${JSON.stringify(again.error?.issues)}\n${JSON.stringify(fields)}`);
    assert.deepEqual(
      withoutProto3Defaults(canonical(again.data)),
      withoutProto3Defaults(canonical(direct.data)),
      where,
    );
    checked++;
  }
  // the corpus holds ~40 listeners and ~50 clusters nuncio loads; a much smaller count means the test lost them
  assert.ok(checked >= 40, `only ${checked} resources checked`);
});
