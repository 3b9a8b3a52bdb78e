import assert from "node:assert/strict";
import { FAKE_OBSERVER, FAKE_TERMINAL } from "./test_extensions.ts";
import { type ConfigError, formatConfigError } from "./errors.ts";
import { defaultListenerName, listenerSchema } from "./listener.ts";
import { loadConfigText } from "./load.ts";

/** A bootstrap with one listener whose body is `body` (indented 4 spaces). */
function withListener(body: string[]): string {
  return [
    "static_resources:",
    "  listeners:",
    "  - address: { socket_address: { address: 0.0.0.0, port_value: 10000 } }",
    ...body.map((l) => `    ${l}`),
  ].join("\n");
}

function errorLines(text: string): string[] {
  const r = loadConfigText(text, "l.yaml");
  assert.equal(r.ok, false, "expected the config to be rejected");
  return r.ok ? [] : r.errors.map(formatConfigError);
}

const terminal =
  `- name: ${FAKE_TERMINAL}\n        typed_config: { "@type": type.googleapis.com/test.TerminalFake, stat_prefix: s, cluster: c }`;

Deno.test("listener schema", async (t) => {
  await t.step("an empty filter name is a config error at the field, not a crash", () => {
    const lines = errorLines(withListener([
      "filter_chains:",
      "- filters:",
      '  - name: ""',
      '    typed_config: { "@type": type.googleapis.com/test.TerminalFake, stat_prefix: s, cluster: c }',
    ]));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /^l\.yaml:6:15: static_resources\.listeners\[0\]\.filter_chains\[0\]\.filters\[0\]\.name: /,
    );
  });

  await t.step("defaults: name from the address, 1 MiB buffer, DEFAULT drain", () => {
    const l = listenerSchema.parse({
      address: { socket_address: { address: "127.0.0.1", port_value: 8080 } },
      filter_chains: [{
        filters: [{
          name: FAKE_TERMINAL,
          typed_config: { "@type": "type.googleapis.com/test.TerminalFake", stat_prefix: "s", cluster: "c" },
        }],
      }],
    });
    assert.equal(l.name, "127.0.0.1_8080");
    assert.equal(l.per_connection_buffer_limit_bytes, 1048576);
    assert.equal(l.drain_type, "DEFAULT");
    assert.deepEqual(l.access_log, []);
    assert.equal(defaultListenerName({ address: "::", port_value: 1 }), "::_1");
  });

  await t.step("accepted fields parse", () => {
    const r = loadConfigText(
      withListener([
        "name: in",
        "stat_prefix: ingress",
        "enable_reuse_port: true",
        "drain_type: DEFAULT",
        "traffic_direction: INBOUND",
        "per_connection_buffer_limit_bytes: 32768",
        "listener_filters: []",
        "filter_chains:",
        "- name: main",
        "  filter_chain_match: {}",
        "  filters:",
        `  ${terminal}`,
      ]),
      "l.yaml",
    );
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
    const l = r.bootstrap.static_resources.listeners[0];
    assert.equal(l.name, "in");
    assert.equal(l.drain_type, "DEFAULT");
    assert.equal(l.traffic_direction, "INBOUND");
    assert.equal(l.per_connection_buffer_limit_bytes, 32768);
    assert.equal(l.filter_chains[0].name, "main");
  });

  await t.step("a filter chain must end with exactly one terminal filter", () => {
    assert.deepEqual(
      errorLines(withListener(["filter_chains:", `- filters:`, `  - name: ${FAKE_OBSERVER}`])),
      [
        `l.yaml:6:9: static_resources.listeners[0].filter_chains[0].filters[0]: Non-terminal filter ${FAKE_OBSERVER} is the last filter in a network filter chain`,
      ],
    );
    assert.deepEqual(
      errorLines(
        withListener(["filter_chains:", "- filters:", `  ${terminal}`, `  - name: ${FAKE_OBSERVER}`]),
      ),
      [
        `l.yaml:6:9: static_resources.listeners[0].filter_chains[0].filters[0]: Terminal filter ${FAKE_TERMINAL} must be the last filter in a network filter chain`,
        `l.yaml:8:9: static_resources.listeners[0].filter_chains[0].filters[1]: Non-terminal filter ${FAKE_OBSERVER} is the last filter in a network filter chain`,
      ],
    );
    assert.deepEqual(errorLines(withListener(["filter_chains:", "- filters: []"])), [
      "l.yaml:5:16: static_resources.listeners[0].filter_chains[0].filters: A filter chain needs a terminal network filter (tcp_proxy or http_connection_manager)",
    ]);
  });

  await t.step("a listener needs exactly one filter chain for now", () => {
    assert.deepEqual(errorLines(withListener(["filter_chains: []"])), [
      "l.yaml:4:20: static_resources.listeners[0].filter_chains: A listener needs at least one filter chain",
    ]);
    const two = withListener([
      "filter_chains:",
      "- filters:",
      `  ${terminal}`,
      "- filters:",
      `  ${terminal}`,
    ]);
    assert.deepEqual(errorLines(two), [
      "l.yaml:8:7: static_resources.listeners[0].filter_chains[1]: Multiple filter chains with the same matching rules are defined",
    ]);
  });

  await t.step("unknown filters name the type URL or the name", () => {
    const lines = errorLines(withListener([
      "filter_chains:",
      "- filters:",
      "  - name: envoy.filters.network.nope",
    ]));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /^l\.yaml:6:15: .*filters\[0\]\.name: Unknown or unsupported network filter "envoy\.filters\.network\.nope"$/,
    );
  });

  const tls = (cert: string) =>
    `{ name: envoy.transport_sockets.tls, typed_config: { "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, common_tls_context: { alpn_protocols: [h2, http/1.1], tls_certificates: [{ certificate_chain: { filename: ${cert}.crt }, private_key: { filename: ${cert}.key } }] } } }`;

  await t.step("filter chains matched by SNI with TLS contexts and the tls_inspector", () => {
    const r = loadConfigText(
      withListener([
        "listener_filters:",
        "- name: envoy.filters.listener.tls_inspector",
        "  typed_config: { '@type': type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector }",
        "listener_filters_timeout: 2s",
        "filter_chains:",
        "- filter_chain_match: { server_names: [A.example.com, '*.b.example.com'] }",
        `  transport_socket: ${tls("a")}`,
        "  filters:",
        `  ${terminal}`,
        "- filter_chain_match: { transport_protocol: raw_buffer }",
        "  transport_socket: { name: envoy.transport_sockets.raw_buffer }",
        "  filters:",
        `  ${terminal}`,
      ]),
      "l.yaml",
    );
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
    const l = r.bootstrap.static_resources.listeners[0];
    assert.equal(l.listener_filters_timeout, 2000);
    assert.deepEqual(l.filter_chains[0].filter_chain_match, {
      destinationPort: undefined,
      serverNames: ["a.example.com", "*.b.example.com"],
      transportProtocol: "",
      applicationProtocols: [],
    });
    const ts = l.filter_chains[0].transport_socket;
    assert.equal(ts?.kind, "tls");
    if (ts?.kind === "tls") {
      assert.deepEqual(ts.config.common_tls_context.alpn_protocols, ["h2", "http/1.1"]);
      assert.equal(ts.config.common_tls_context.tls_certificates[0].certificate_chain.filename, "a.crt");
    }
    assert.deepEqual(l.filter_chains[1].transport_socket, { kind: "raw" });
    assert.equal(l.filter_chains[1].filter_chain_match.transportProtocol, "raw_buffer");
  });

  await t.step("chains with the same matching rules are rejected", () => {
    const lines = errorLines(withListener([
      "filter_chains:",
      "- filter_chain_match: { server_names: [a.example.com, b.example.com] }",
      "  filters:",
      `  ${terminal}`,
      "- filter_chain_match: { server_names: [b.example.com] }",
      "  filters:",
      `  ${terminal}`,
    ]));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /filter_chains\[1\]: Multiple filter chains with the same matching rules are defined$/,
    );
  });

  await t.step("unsupported listener filters, match fields and TLS options are named", () => {
    const lines = errorLines(withListener([
      "listener_filters:",
      "- name: envoy.filters.listener.original_src",
      "- name: envoy.filters.listener.http_inspector",
      "connection_balance_config: { exact_balance: {} }",
      "socket_options: []",
      "filter_chains:",
      "- filter_chain_match: { prefix_ranges: [], server_names: ['a.*.com'] }",
      "  transport_socket: { name: envoy.transport_sockets.tls, typed_config: { '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext, ocsp_staple_policy: STRICT_STAPLING, common_tls_context: { tls_params: { tls_maximum_protocol_version: TLSv1_1 } } } }",
      "  filters:",
      `  ${terminal}`,
    ]));
    const text = lines.join("\n");
    assert.match(
      text,
      /listener_filters\[0\]\.name: Unknown or unsupported listener filter "envoy\.filters\.listener\.original_src"/,
    );
    assert.match(
      text,
      /listener_filters\[1\]\.name: Unknown or unsupported listener filter "envoy\.filters\.listener\.http_inspector"/,
    );
    assert.match(text, /connection_balance_config: Field not supported by nuncio/);
    assert.match(text, /socket_options: Field not supported by nuncio/);
    assert.match(text, /filter_chain_match\.prefix_ranges: Field not supported by nuncio/);
    assert.match(text, /filter_chain_match\.server_names\[0\]: Invalid server name/);
    assert.match(text, /typed_config\.ocsp_staple_policy: Field not supported by nuncio/);
    assert.match(text, /tls_params\.tls_maximum_protocol_version: Field not supported by nuncio/);
  });

  await t.step("an UpstreamTlsContext is not a listener transport socket", () => {
    const lines = errorLines(withListener([
      "filter_chains:",
      "- transport_socket: { name: envoy.transport_sockets.tls, typed_config: { '@type': type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, sni: x } }",
      "  filters:",
      `  ${terminal}`,
    ]));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /transport_socket\.typed_config\.@type: A downstream transport socket needs DownstreamTlsContext$/,
    );
  });

  await t.step("listener access logs are rejected, not ignored (nothing emits them)", () => {
    const text = (entries: string[]) =>
      withListener([
        "access_log:" + (entries.length ? "" : " []"),
        ...entries,
        "filter_chains:",
        "- filters:",
        `  ${terminal}`,
      ]);
    const r = loadConfigText(
      text([
        "- name: test.access_loggers.fake",
        "  typed_config: { '@type': type.googleapis.com/test.FakeLog, path: x }",
      ]),
      "l.yaml",
    );
    assert.deepEqual(
      (r as { errors: ConfigError[] }).errors.map((e) => `${e.path}: ${e.message}`),
      [
        "static_resources.listeners[0].access_log: Field not supported by nuncio: listener access logs (use the connection manager's or tcp_proxy's)",
      ],
    );
    assert.ok(loadConfigText(text([]), "l.yaml").ok);
  });

  await t.step("two listeners on port 0 do not conflict", () => {
    const l = (name: string) => [
      `  - name: ${name}`,
      "    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
      "    filter_chains:",
      "    - filters:",
      `      ${terminal}`,
    ];
    const r = loadConfigText(
      ["static_resources:", "  listeners:", ...l("a"), ...l("b")].join("\n"),
      "p.yaml",
    );
    assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
  });
});

Deno.test("listener and address fields nuncio takes only at its own behaviour", async (t) => {
  const listener = (extra: Record<string, unknown>, sa: Record<string, unknown> = {}) => ({
    address: { socket_address: { address: "::", port_value: 8080, ...sa } },
    filter_chains: [{
      filters: [{
        name: FAKE_TERMINAL,
        typed_config: { "@type": "type.googleapis.com/test.TerminalFake", stat_prefix: "s", cluster: "c" },
      }],
    }],
    ...extra,
  });
  const issues = (input: unknown) => {
    const r = listenerSchema.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  await t.step("the values matching nuncio load", () => {
    assert.deepEqual(
      issues(listener(
        { enable_reuse_port: true, drain_type: "DEFAULT", traffic_direction: "OUTBOUND" },
        { protocol: "TCP", resolver_name: "", ipv4_compat: true },
      )),
      [],
    );
    assert.deepEqual(issues(listener({ traffic_direction: "INBOUND" })), []);
  });

  await t.step("other values are errors at the field saying what nuncio does", () => {
    const cases: [Record<string, unknown>, Record<string, unknown>, string][] = [
      [
        { enable_reuse_port: false },
        {},
        "enable_reuse_port: Field not supported by nuncio: only true (nuncio always shares ports with reusePort)",
      ],
      [
        { drain_type: "MODIFY_ONLY" },
        {},
        "drain_type: Field not supported by nuncio: only DEFAULT (every listener drains on shutdown)",
      ],
      [{ tcp_backlog_size: 1024 }, {}, "tcp_backlog_size: Field not supported by nuncio"],
      [
        {},
        { protocol: "UDP" },
        "address.socket_address.protocol: Field not supported by nuncio: only TCP (nuncio has no UDP listeners or upstreams)",
      ],
      [
        {},
        { resolver_name: "custom" },
        'address.socket_address.resolver_name: Field not supported by nuncio: only "" (addresses resolve with the system resolver)',
      ],
      [
        {},
        { ipv4_compat: false },
        'address.socket_address.ipv4_compat: Field not supported by nuncio: only true (an IPv6 "::" listener also accepts IPv4 where the system allows it)',
      ],
    ];
    for (const [extra, sa, message] of cases) assert.deepEqual(issues(listener(extra, sa)), [message]);
  });
});
