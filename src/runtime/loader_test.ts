import assert from "node:assert/strict";
import { StatsStore } from "../stats/store.ts";
import { layeredRuntimeSchema } from "./config.ts";
import { diskLayerValues, fileValue, staticLayerValues } from "./layers.ts";
import { NoAdminLayerError, RuntimeLoader } from "./loader.ts";
import type { RuntimeSnapshot } from "./snapshot.ts";
import { runtimeView } from "./admin.ts";

/** Writes `files` (relative path -> content) under `dir`. */
async function tree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [p, text] of Object.entries(files)) {
    const full = `${dir}/${p}`;
    await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
}

Deno.test("static layer: dots are tree edges, numerator/denominator mappings are leaves, lists rejected", () => {
  const v = staticLayerValues({
    health_check: { min_interval: 5 },
    flag: true,
    ratio: 0.5,
    s: "text",
    pct: { numerator: 20, denominator: "TEN_THOUSAND" },
    empty: {},
  });
  assert.deepEqual([...v.keys()], ["health_check.min_interval", "flag", "ratio", "s", "pct", "empty"]);
  assert.equal(v.get("health_check.min_interval")?.uint, 5);
  assert.equal(v.get("flag")?.bool, true);
  assert.equal(v.get("ratio")?.double, 0.5);
  assert.equal(v.get("s")?.raw, "text");
  assert.equal(v.get("pct")?.raw, "denominator: TEN_THOUSAND\nnumerator: 20");
  assert.deepEqual(v.get("pct")?.fraction, { numerator: 20, denominator: 10_000 });
  assert.deepEqual(v.get("empty")?.fraction, { numerator: 0, denominator: 100 });
  assert.throws(() => staticLayerValues({ a: { b: [1] } }), /Invalid runtime entry value for a\.b/);
  assert.throws(() => staticLayerValues({ a: null }), /Invalid runtime entry value for a/);
});

Deno.test("file values: comments dropped, last line right-trimmed", () => {
  assert.equal(fileValue("42\n"), "42");
  assert.equal(fileValue("# placeholder\n"), "");
  assert.equal(fileValue("# why\n7  \n"), "7");
  assert.equal(fileValue("numerator: 5\n\ndenominator: MILLION\n"), "numerator: 5\ndenominator: MILLION");
});

Deno.test("layered_runtime schema: Envoy's checks, RTDS not supported", () => {
  const bad = (v: unknown) => layeredRuntimeSchema.safeParse(v).error?.issues.map((i) => i.message) ?? [];
  assert.deepEqual(bad({ layers: [{ name: "a", admin_layer: {} }, { name: "a", static_layer: {} }] }), [
    "Duplicate layer name: a",
  ]);
  assert.deepEqual(bad({ layers: [{ name: "a", admin_layer: {} }, { name: "b", admin_layer: {} }] }), [
    "Too many admin layers specified in LayeredRuntime, at most one may be specified",
  ]);
  assert.deepEqual(bad({ layers: [{ name: "r", rtds_layer: { name: "x" } }] }), [
    "Field not supported by nuncio: runtime discovery (RTDS) layers",
  ]);
  assert.deepEqual(bad({ layers: [{ name: "s", static_layer: { k: [1] } }] }), [
    "Invalid runtime entry value for k",
  ]);
  assert.match(bad({ layers: [{ name: "x" }] })[0], /Exactly one of static_layer/);
  assert.match(bad({ layers: [{ name: "x", static_layer: {}, admin_layer: {} }] })[0], /Exactly one of/);
  assert.equal(
    layeredRuntimeSchema.safeParse({ layers: [{ name: "d", disk_layer: { symlink_root: "/x" } }] })
      .success,
    true,
  );
});

Deno.test("loader: static, disk (symlink swap), admin layers; stats; published snapshots", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_runtime_" });
  try {
    await tree(dir, {
      "v1/envoy/fault/http/abort/abort_percent": "10\n",
      "v1/envoy/health_check/min_interval": "# seconds\n5\n",
      "v1/envoy_override/svc/fault/http/abort/abort_percent": "20",
      "v2/envoy/fault/http/abort/abort_percent": "90\n",
    });
    await Deno.symlink(`${dir}/v1`, `${dir}/current`);
    const stats = new StatsStore();
    const published: RuntimeSnapshot[] = [];
    let wake: (() => void) | undefined;
    const config = layeredRuntimeSchema.parse({
      layers: [
        {
          name: "static",
          static_layer: { fault: { http: { abort: { abort_percent: 1 } } }, only_static: "s" },
        },
        { name: "disk", disk_layer: { symlink_root: `${dir}/current`, subdirectory: "envoy" } },
        {
          name: "override",
          disk_layer: {
            symlink_root: `${dir}/current`,
            subdirectory: "envoy_override",
            append_service_cluster: true,
          },
        },
        { name: "admin", admin_layer: {} },
      ],
    });
    const loader = new RuntimeLoader(config, {
      serviceCluster: "svc",
      stats,
      publish: (s) => {
        published.push(s);
        wake?.();
        return Promise.resolve();
      },
    });
    try {
      await loader.start();
      let s = loader.snapshot;
      assert.equal(published.length, 1);
      assert.equal(s.getInteger("fault.http.abort.abort_percent", 0), 20, "the override layer wins");
      assert.equal(s.getInteger("health_check.min_interval", 0), 5);
      assert.equal(s.get("only_static"), "s");
      assert.deepEqual(runtimeView(s).layers, ["static", "disk", "override", "admin"]);
      assert.deepEqual(runtimeView(s).entries["fault.http.abort.abort_percent"], {
        final_value: "20",
        layer_values: ["1", "10", "20", ""],
      });
      assert.equal(stats.counter("runtime.load_success").value, 1);
      assert.equal(stats.counter("runtime.override_dir_exists").value, 1);
      assert.equal(stats.gauge("runtime.num_layers").value, 4);
      assert.equal(stats.gauge("runtime.num_keys").value, 3);

      // the atomic swap: v2 has no override directory, so that layer drops out
      const swapped = new Promise<void>((r) => wake = r);
      await Deno.symlink(`${dir}/v2`, `${dir}/new`);
      await Deno.rename(`${dir}/new`, `${dir}/current`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        swapped,
        new Promise((_, rej) => timer = setTimeout(() => rej(new Error("no reload")), 5000)),
      ])
        .finally(() => {
          clearTimeout(timer);
          wake = undefined;
        });
      // a swap may produce more than one event: let any second reload finish
      await new Promise((r) => setTimeout(r, 100));
      s = loader.snapshot;
      assert.equal(s.getInteger("fault.http.abort.abort_percent", 0), 90);
      assert.equal(s.get("health_check.min_interval"), undefined);
      assert.deepEqual(runtimeView(s).layers, ["static", "disk", "admin"]);
      assert.equal(stats.gauge("runtime.num_layers").value, 3);
      assert.ok(stats.counter("runtime.override_dir_not_exists").value >= 1);

      // a file written inside the tree is not a swap: nothing reloads until the next one
      const before = published.length;
      await Deno.writeTextFile(`${dir}/v2/envoy/fault/http/abort/abort_percent`, "50");
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(published.length, before);

      await loader.mergeValues([["fault.http.abort.abort_percent", "3"]]);
      assert.equal(loader.snapshot.getInteger("fault.http.abort.abort_percent", 0), 3);
      assert.equal(stats.gauge("runtime.admin_overrides_active").value, 1);
      await loader.mergeValues([["fault.http.abort.abort_percent", ""]]);
      assert.equal(loader.snapshot.getInteger("fault.http.abort.abort_percent", 0), 50, "read at this load");
      assert.equal(stats.gauge("runtime.admin_overrides_active").value, 0);
    } finally {
      loader.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loader: no layered_runtime has no layers; empty layers get an admin layer; unwatchable root fails", async () => {
  const stats = new StatsStore();
  const publish = () => Promise.resolve();
  const none = new RuntimeLoader(undefined, { serviceCluster: "", stats, publish });
  await none.start();
  assert.deepEqual(runtimeView(none.snapshot), { entries: {}, layers: [] });
  await assert.rejects(none.mergeValues([["a", "1"]]), NoAdminLayerError);
  none.close();

  const empty = new RuntimeLoader({ layers: [] }, { serviceCluster: "", stats, publish });
  await empty.start();
  await empty.mergeValues([["a", "1"]]);
  assert.deepEqual(runtimeView(empty.snapshot).layers, [""]);
  assert.equal(empty.snapshot.getInteger("a", 0), 1);
  empty.close();

  const bad = new RuntimeLoader(
    {
      layers: [{
        name: "d",
        disk_layer: {
          symlink_root: "/nonexistent_dir_x/current",
          subdirectory: "",
          append_service_cluster: false,
        },
      }],
    },
    { serviceCluster: "", stats, publish },
  );
  await assert.rejects(
    bad.start(),
    /unable to add filesystem watch for file \/nonexistent_dir_x\/current: No such file or directory/,
  );
});

Deno.test("disk layer: a directory too deep is a load error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_runtime_deep_" });
  try {
    await tree(dir, { [`${Array.from({ length: 17 }, (_, i) => `d${i}`).join("/")}/k`]: "1" });
    assert.throws(() => diskLayerValues(dir), /Walk recursion depth exceeded 16/);
    await Deno.symlink(dir, `${dir}_current`);
    const stats = new StatsStore();
    const loader = new RuntimeLoader(
      {
        layers: [{
          name: "d",
          disk_layer: { symlink_root: `${dir}_current`, subdirectory: "", append_service_cluster: false },
        }],
      },
      { serviceCluster: "", stats, publish: () => Promise.resolve() },
    );
    await loader.start();
    loader.close();
    assert.equal(stats.counter("runtime.load_error").value, 1);
    assert.equal(stats.gauge("runtime.num_layers").value, 0);
  } finally {
    await Deno.remove(`${dir}_current`).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
