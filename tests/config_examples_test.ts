/** Every example bootstrap in config/ loads (schema and cluster references); limits files are not bootstraps. */
import assert from "node:assert/strict";
import "../src/registry/builtin.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigFile } from "../src/config/load.ts";
import { checkClusterReferences } from "../src/server/cross_check.ts";

const DIR = new URL("../config/", import.meta.url).pathname;
const NOT_BOOTSTRAPS = new Set(["ratelimit.yaml"]);

Deno.test("config/ examples are valid bootstraps", async () => {
  const names = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) =>
    n.endsWith(".yaml") && !NOT_BOOTSTRAPS.has(n)
  );
  assert.ok(names.includes("demo.yaml") && names.includes("sidecar.yaml"), names.join(","));
  for (const n of names) {
    const r = await loadConfigFile(`${DIR}${n}`, { crossCheck: checkClusterReferences });
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
  }
});
