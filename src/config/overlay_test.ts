import assert from "node:assert/strict";
import "./test_extensions.ts";
import { formatConfigError } from "./errors.ts";
import { applyNodeOverrides, loadConfigSource, mergeFrom } from "./overlay.ts";

Deno.test("overlay: protobuf MergeFrom on plain data", () => {
  const base = { a: 1, m: { x: 1, y: [1, 2], n: { k: "v" } }, l: [{ name: "a" }] };
  const over = { a: 2, m: { y: [3], n: { j: "w" }, z: true }, l: [{ name: "b" }] };
  assert.deepEqual(mergeFrom(base, over), {
    a: 2,
    m: { x: 1, y: [1, 2, 3], n: { k: "v", j: "w" }, z: true },
    l: [{ name: "a" }, { name: "b" }],
  });
  assert.deepEqual(base.m.y, [1, 2]); // inputs untouched
  // an Any of another type replaces the base one; of the same type it merges
  assert.deepEqual(mergeFrom({ t: { "@type": "A", x: 1 } }, { t: { "@type": "B", y: 2 } }), {
    t: { "@type": "B", y: 2 },
  });
  assert.deepEqual(mergeFrom({ t: { "@type": "A", x: 1 } }, { t: { "@type": "A", y: 2 } }), {
    t: { "@type": "A", x: 1, y: 2 },
  });
  assert.deepEqual(
    applyNodeOverrides({ node: { id: "a", locality: { region: "r" } } }, { cluster: "c", zone: "z" }),
    {
      node: { id: "a", cluster: "c", locality: { region: "r", zone: "z" } },
    },
  );
});

const FILE = `node: { id: from-file, cluster: c1 }
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 9901 } }
static_resources:
  clusters:
    - name: a
      connect_timeout: 1s
`;

async function withFile<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(path, text);
  try {
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("overlay: --config-yaml merged over the file, node overrides on top", async () => {
  await withFile(FILE, async (path) => {
    const r = await loadConfigSource({
      path,
      overlayYaml: `node: {id: from-flag}
admin: {address: {socket_address: {port_value: 9902}}}
static_resources: {clusters: [{name: b, connect_timeout: 2s}]}`,
      node: { zone: "z1" },
    });
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
    assert.deepEqual(r.bootstrap.node, { id: "from-flag", cluster: "c1", locality: { zone: "z1" } });
    assert.equal(r.bootstrap.admin?.address?.socket_address.port_value, 9902);
    assert.equal(r.bootstrap.admin?.address?.socket_address.address, "127.0.0.1");
    assert.deepEqual(r.bootstrap.static_resources.clusters.map((c) => c.name), ["a", "b"]);
    assert.deepEqual((r.raw as { node: unknown }).node, {
      id: "from-flag",
      cluster: "c1",
      locality: { zone: "z1" },
    });
  });
});

Deno.test("overlay: --config-yaml alone is the bootstrap", async () => {
  const r = await loadConfigSource({ overlayYaml: "node: {id: solo}", node: { cluster: "c" } });
  assert.ok(r.ok);
  assert.deepEqual(r.bootstrap.node, { id: "solo", cluster: "c" });
});

Deno.test("overlay: errors point at the text the field came from", async () => {
  await withFile(FILE, async (path) => {
    // a bad field in the overlay: --config-yaml:line:col
    let r = await loadConfigSource({
      path,
      overlayYaml: "static_resources:\n  clusters:\n    - name: b\n      lb_policy: BOGUS\n",
    });
    assert.ok(!r.ok);
    assert.equal(r.errors.length, 1);
    assert.match(
      formatConfigError(r.errors[0]),
      /^--config-yaml:4:18: static_resources\.clusters\[1\]\.lb_policy: /,
    );
    // an unknown key from the overlay points at the key
    r = await loadConfigSource({ path, overlayYaml: "admin: {bogus: 1}" });
    assert.ok(!r.ok);
    assert.match(formatConfigError(r.errors[0]), /^--config-yaml:1:9: admin\.bogus: Unknown field/);
    // an error in the file's own part keeps the file position
    r = await loadConfigSource({ path: path, overlayYaml: "node: {id: x}", node: {} });
    assert.ok(r.ok);
    r = await loadConfigSource({ overlayYaml: "node: {id: [1]}" });
    assert.ok(!r.ok);
    assert.match(formatConfigError(r.errors[0]), /^--config-yaml:1:12: node\.id: /);
    // syntax errors and non-mappings
    r = await loadConfigSource({ path, overlayYaml: "node: {id: x" });
    assert.ok(!r.ok);
    assert.match(formatConfigError(r.errors[0]), /^--config-yaml:\d+:\d+: YAML syntax error/);
    r = await loadConfigSource({ path, overlayYaml: "- 1" });
    assert.ok(!r.ok);
    assert.equal(formatConfigError(r.errors[0]), "--config-yaml:1:1: A bootstrap must be a mapping");
  });
  await withFile(FILE.replace("connect_timeout: 1s", "connect_timeout: soon"), async (path) => {
    const r = await loadConfigSource({ path, overlayYaml: "node: {id: x}" });
    assert.ok(!r.ok);
    assert.match(
      formatConfigError(r.errors[0]),
      new RegExp(`^${path}:7:24: static_resources\\.clusters\\[0\\]\\.connect_timeout`),
    );
  });
});

Deno.test("overlay: a key with no value in --config-yaml leaves the file's field alone", async () => {
  await withFile(FILE, async (path) => {
    const r = await loadConfigSource({ path, overlayYaml: "static_resources:\nadmin:\nnode: {cluster: }" });
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
    assert.deepEqual(r.bootstrap.static_resources.clusters.map((c) => c.name), ["a"]);
    assert.equal(r.bootstrap.admin?.address?.socket_address.port_value, 9901);
    assert.equal(r.bootstrap.node?.cluster, "c1");
  });
});

Deno.test("overlay: an empty file is reported as such, with or without flags merged over it", async () => {
  await withFile("# nothing here\n", async (path) => {
    for (const src of [{ path }, { path, node: { id: "x" } }, { path, overlayYaml: "node: {id: y}" }]) {
      const r = await loadConfigSource(src);
      assert.equal(r.ok, false);
      assert.deepEqual(r.ok ? [] : r.errors.map(formatConfigError), [
        `${path}:1:1: The config file is empty`,
      ]);
    }
  });
});
