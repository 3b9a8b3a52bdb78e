import assert from "node:assert/strict";
import "./test_extensions.ts";
import { type ConfigError, configError, ConfigIssueError, formatConfigError } from "./errors.ts";
import { loadConfigFile, loadConfigText, type LoadResult, validateConfigFile } from "./load.ts";

const FIXTURES = new URL("../../tests/fixtures/config/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;

function errorsOf(r: LoadResult): ConfigError[] {
  assert.equal(r.ok, false, "expected the config to be rejected");
  return (r as { errors: ConfigError[] }).errors;
}

function find(errors: ConfigError[], path: string): ConfigError {
  const e = errors.find((x) => x.path === path);
  assert.ok(e, `no error at ${path}; got:\n${errors.map(formatConfigError).join("\n")}`);
  return e;
}

Deno.test("loadConfigFile", async (t) => {
  await t.step("valid minimal YAML bootstrap parses with defaults", async () => {
    const r = await loadConfigFile(fixture("minimal.yaml"));
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
    const b = r.bootstrap;
    assert.equal(b.node?.id, "node-1");
    assert.equal(b.admin?.address?.socket_address.port_value, 9901);
    const l = b.static_resources.listeners[0];
    assert.equal(l.name, "0.0.0.0_10000");
    assert.equal(l.per_connection_buffer_limit_bytes, 1024 * 1024);
    assert.equal(l.drain_type, "DEFAULT");
    const filters = l.filter_chains[0].filters;
    assert.deepEqual(filters.map((f) => f.ext.name), [
      "test.filters.network.observer_fake",
      "test.filters.network.terminal_fake",
    ]);
    assert.deepEqual(filters[1].config, {
      stat_prefix: "ingress_tcp",
      cluster: "backend",
      idle_timeout: 500,
      mode: "FAST",
    });
    const c = b.static_resources.clusters[0];
    assert.equal(c.name, "backend");
    assert.equal(c.connect_timeout, 250);
    assert.equal(c.lb_policy, "ROUND_ROBIN");
    assert.equal((r.raw as { node: { cluster: string } }).node.cluster, "demo");
  });

  await t.step("valid JSON bootstrap parses, durations in JSON object form", async () => {
    const r = await loadConfigFile(fixture("minimal.json"));
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
    const l = r.bootstrap.static_resources.listeners[0];
    assert.equal(l.name, "tcp_in");
    assert.equal(l.filter_chains[0].filters[0].config.idle_timeout, 1500);
    assert.equal(r.bootstrap.static_resources.clusters[0].connect_timeout, 1000);
  });

  await t.step("JSON syntax error reports line:col", () => {
    // a trailing comma: YAML would accept it, JSON does not (kept inline: deno fmt cannot format it)
    const text =
      '{\n  "static_resources": {\n    "listeners": [],\n    "clusters": [ { "name": "a", } ]\n  }\n}\n';
    const errors = errorsOf(loadConfigText(text, "syntax_error.json"));
    assert.equal(errors.length, 1);
    assert.deepEqual([errors[0].line, errors[0].column], [4, 34]);
    assert.match(errors[0].message, /^JSON syntax error: Expected a double-quoted key/);
    assert.match(formatConfigError(errors[0]), /^syntax_error\.json:4:34: JSON syntax error/);
  });

  await t.step("YAML syntax error reports line:col", () => {
    const text = [
      "static_resources:",
      "  listeners:",
      "  - name: a",
      "    address: { socket_address: { address: 0.0.0.0, port_value: 1 }",
      "  clusters: []",
    ].join("\n");
    const errors = errorsOf(loadConfigText(text, "syntax_error.yaml"));
    assert.ok(errors.length >= 1);
    assert.match(errors[0].message, /^YAML syntax error: Flow map/);
    assert.deepEqual([errors[0].line, errors[0].column], [5, 3]);
    const tab = errorsOf(loadConfigText("admin:\n\tprofile_path: x\n", "tab.yaml"));
    assert.deepEqual([tab[0].line, tab[0].column], [2, 1]);
  });

  await t.step("duplicate keys are errors at the second key", async () => {
    const errors = errorsOf(await loadConfigFile(fixture("duplicate_key.yaml")));
    assert.equal(errors.length, 1);
    assert.deepEqual([errors[0].line, errors[0].column], [3, 3]);
    assert.match(errors[0].message, /Map keys must be unique/);
  });

  await t.step("every schema error is reported with its path and position", async () => {
    const file = fixture("errors_mixed.yaml");
    const errors = errorsOf(await loadConfigFile(file));
    const fc = "static_resources.listeners[0].filter_chains[0]";
    const cases: [string, number, number, RegExp][] = [
      // wrong enum: at the value
      [
        "static_resources.listeners[0].drain_type",
        8,
        19,
        /^Invalid option: expected one of "DEFAULT"\|"MODIFY_ONLY"$/,
      ],
      // unknown field: at the key
      ["static_resources.listeners[0].per_connection_buffer_limit_byte", 9, 7, /^Unknown field$/],
      // a transport socket without its typed_config: a block value is reported at its key
      [
        `${fc}.transport_socket`,
        11,
        11,
        /^A TLS transport socket needs typed_config \(DownstreamTlsContext\)$/,
      ],
      // errors inside a typed_config keep the path through typed_config
      [`${fc}.filters[0].typed_config.idle_timeout`, 19, 31, /^Invalid duration/],
      [`${fc}.filters[0].typed_config.bogus`, 20, 17, /^Unknown field$/],
      // missing required fields point at the parent map
      ["static_resources.listeners[1].address.socket_address.port_value", 23, 11, /^Missing required field$/],
      [
        "static_resources.listeners[1].filter_chains[0].filters[0].typed_config.stat_prefix",
        28,
        17,
        /^Missing required field$/,
      ],
      ["overload_manager", 30, 1, /^Field not supported by nuncio$/],
    ];
    for (const [path, line, column, message] of cases) {
      const e = find(errors, path);
      assert.deepEqual([e.line, e.column], [line, column], `position of ${path}`);
      assert.match(e.message, message);
      assert.equal(e.file, file);
    }
    assert.equal(errors.length, cases.length, errors.map(formatConfigError).join("\n"));
    // sorted by position
    assert.deepEqual(errors.map((e) => e.line), [...errors.map((e) => e.line)].sort((a, b) => a - b));
    assert.equal(
      formatConfigError(find(errors, "static_resources.listeners[0].drain_type")),
      `${file}:8:19: static_resources.listeners[0].drain_type: Invalid option: expected one of "DEFAULT"|"MODIFY_ONLY"`,
    );
  });

  await t.step("duplicate listener addresses and names", async () => {
    const errors = errorsOf(await loadConfigFile(fixture("duplicates.yaml")));
    assert.equal(errors.length, 2);
    const addr = find(errors, "static_resources.listeners[1].address");
    assert.deepEqual([addr.line, addr.column], [11, 7]); // the key of the block mapping
    assert.match(addr.message, /same address 0\.0\.0\.0:10000 as listeners\[0\]/);
    const name = find(errors, "static_resources.listeners[2].name");
    assert.deepEqual([name.line, name.column], [17, 13]);
    assert.match(name.message, /^Duplicate listener name "one"/);
  });

  await t.step("cluster errors: bad duration, wrong enum, unsupported, missing name", async () => {
    const errors = errorsOf(await loadConfigFile(fixture("cluster_errors.yaml")));
    const cases: [string, number, number, RegExp][] = [
      ["static_resources.clusters[0].connect_timeout", 4, 24, /^Invalid duration/],
      ["static_resources.clusters[0].lb_policy", 5, 18, /ROUND_ROBIN_PLEASE/],
      ["static_resources.clusters[0].lrs_server", 6, 19, /^Field not supported by nuncio$/],
      // the missing name points at the cluster's map
      ["static_resources.clusters[1].name", 7, 7, /^Missing required field$/],
    ];
    for (const [path, line, column, message] of cases) {
      const e = find(errors, path);
      assert.deepEqual([e.line, e.column], [line, column], `position of ${path}`);
      assert.match(e.message, message);
    }
    assert.equal(errors.length, cases.length, errors.map(formatConfigError).join("\n"));
  });

  await t.step("duplicate cluster names", () => {
    const text = [
      "static_resources:",
      "  clusters:",
      "  - name: a",
      "  - name: b",
      "  - { name: a, connect_timeout: 1s }",
    ].join("\n");
    assert.deepEqual(errorsOf(loadConfigText(text, "c.yaml")).map(formatConfigError), [
      'c.yaml:5:13: static_resources.clusters[2].name: Duplicate cluster name "a" (also clusters[0])',
    ]);
  });

  await t.step("a missing file is an error without position", async () => {
    const errors = errorsOf(await loadConfigFile(fixture("does_not_exist.yaml")));
    assert.equal(errors[0].line, 0);
    assert.match(formatConfigError(errors[0]), /does_not_exist\.yaml: Config file not found$/);
  });
});

Deno.test("loadConfigText", async (t) => {
  await t.step("format follows the file name, and can be forced", () => {
    const json = '{"node": {"id": "a"}}';
    assert.ok(loadConfigText(json, "x.json").ok);
    assert.ok(loadConfigText(json, "x.yaml").ok);
    // YAML accepts an empty value in a flow map; JSON does not
    const loose = '{"node": {"id": }}';
    assert.ok(loadConfigText(loose, "x.yaml").ok); // id: null is not set, as in protobuf JSON
    const errors = errorsOf(loadConfigText(loose, "x.conf", "json"));
    assert.deepEqual([errors[0].line, errors[0].column, errors[0].path], [1, 17, ""]);
    assert.match(errors[0].message, /^JSON syntax error: Expected a JSON value/);
  });

  await t.step("an empty or comment-only file is one error at 1:1", () => {
    for (
      const [text, name] of [["", "empty.yaml"], ["# nothing yet\n\n# here\n", "c.yaml"], [" \n", "e.json"]]
    ) {
      assert.deepEqual(errorsOf(loadConfigText(text, name)).map(formatConfigError), [
        `${name}:1:1: The config file is empty`,
      ]);
    }
    // an explicit empty mapping is an all-defaults bootstrap
    const r = loadConfigText("{}\n", "map.yaml");
    assert.ok(r.ok);
    assert.deepEqual(r.bootstrap.static_resources, { listeners: [], clusters: [], secrets: [] });
  });

  await t.step(
    "an unsupported alternative of a oneof is the error, at its key; the missing one is not",
    () => {
      const text = "admin:\n  address:\n    pipe:\n      path: /tmp/a.sock\n";
      assert.deepEqual(errorsOf(loadConfigText(text, "a.yaml")).map(formatConfigError), [
        "a.yaml:3:5: admin.address.pipe: Field not supported by nuncio",
      ]);
    },
  );

  await t.step("aliases and merge keys resolve", () => {
    const text = [
      "x-addr: &addr",
      "  socket_address: { address: 127.0.0.1, port_value: 9901 }",
      "admin:",
      "  address: *addr",
    ].join("\n");
    // x-addr is not an Envoy field (Envoy rejects unknown top-level keys too)
    const errors = errorsOf(loadConfigText(text, "a.yaml"));
    assert.deepEqual(errors.map((e) => e.path), ["x-addr"]);
    const ok = loadConfigText(
      "admin:\n  address: &a { socket_address: { address: ::1, port_value: 1 } }\n",
      "b.yaml",
    );
    assert.ok(ok.ok);
    const merged = [
      "static_resources:",
      "  clusters:",
      "  - &base { name: a, connect_timeout: 2s, type: STATIC }",
      "  - <<: *base",
      "    name: b",
      "    lb_polcy: RANDOM",
    ].join("\n");
    const errs = errorsOf(loadConfigText(merged, "m.yaml"));
    assert.deepEqual(errs.map(formatConfigError), [
      "m.yaml:6:5: static_resources.clusters[1].lb_polcy: Unknown field",
    ]);
    const r = loadConfigText(merged.replace("lb_polcy", "lb_policy"), "m.yaml");
    assert.ok(r.ok);
    assert.deepEqual(r.bootstrap.static_resources.clusters.map((c) => [c.name, c.connect_timeout]), [
      ["a", 2000],
      ["b", 2000],
    ]);
  });

  await t.step("crossCheck results are positioned, returned or thrown", () => {
    const text = "node:\n  id: a\n  cluster: b\n";
    const r1 = loadConfigText(text, "c.yaml", {
      crossCheck: (b) => [configError(["node", "cluster"], `Unknown cluster ${b.node?.cluster}`)],
    });
    assert.deepEqual(errorsOf(r1).map(formatConfigError), ["c.yaml:3:12: node.cluster: Unknown cluster b"]);
    const r2 = loadConfigText(text, "c.yaml", {
      crossCheck: () => {
        throw new ConfigIssueError([configError(["node", "locality"], "Locality required")]);
      },
    });
    // a missing leaf points at its parent
    assert.deepEqual(errorsOf(r2).map(formatConfigError), ["c.yaml:2:3: node.locality: Locality required"]);
    assert.ok(loadConfigText(text, "c.yaml", { crossCheck: () => [] }).ok);
  });

  await t.step("crossCheck does not run when the schema failed", () => {
    let ran = false;
    const r = loadConfigText("node: { id: 1 }", "d.yaml", {
      crossCheck: () => {
        ran = true;
        return [];
      },
    });
    assert.equal(r.ok, false);
    assert.equal(ran, false);
  });
});

Deno.test("validateConfigFile prints formatted errors to stderr", async () => {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    assert.equal(await validateConfigFile(fixture("minimal.yaml")), true);
    assert.deepEqual(lines, []);
    assert.equal(await validateConfigFile(fixture("duplicates.yaml")), false);
  } finally {
    console.error = orig;
  }
  assert.equal(lines.length, 2);
  assert.match(lines[0], /duplicates\.yaml:11:7: static_resources\.listeners\[1\]\.address: Listener "two"/);
});

Deno.test("an integer field given something else names the expected type", () => {
  const text = [
    "static_resources:",
    "  clusters:",
    "  - name: a",
    "    lb_policy: RING_HASH",
    "    ring_hash_lb_config: { minimum_ring_size: abc }",
    "  - name: b",
    "    lb_policy: RING_HASH",
    "    ring_hash_lb_config: { minimum_ring_size: true }",
  ].join("\n");
  assert.deepEqual(errorsOf(loadConfigText(text, "u.yaml")).map(formatConfigError), [
    "u.yaml:5:47: static_resources.clusters[0].ring_hash_lb_config.minimum_ring_size: Invalid input: expected number, received string",
    "u.yaml:8:47: static_resources.clusters[1].ring_hash_lb_config.minimum_ring_size: Invalid input: expected number, received boolean",
  ]);
});

Deno.test("a field written with no value is not set: a required one is reported missing at its key", () => {
  const text = [
    "static_resources:",
    "  listeners:",
    "    - address:",
    "        socket_address:",
    "      filter_chains:",
    "        - filter_chain_match:",
    "          filters:",
    "            - name: test.filters.network.observer_fake",
    "              typed_config:",
    "            - name: test.filters.network.terminal_fake",
    '              typed_config: { "@type": type.googleapis.com/test.TerminalFake, stat_prefix: t, cluster: c, idle_timeout: }',
    "  clusters:",
    "",
  ].join("\n");
  const errors = errorsOf(loadConfigText(text, "nulls.yaml"));
  assert.deepEqual(errors.map(formatConfigError), [
    "nulls.yaml:4:9: static_resources.listeners[0].address.socket_address: Missing required field",
  ]);
});
