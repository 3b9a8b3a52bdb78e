import assert from "node:assert/strict";
import "../registry/builtin.ts";
import { formatConfigError } from "../config/errors.ts";
import { loadConfigTextChecked, type LoadResult } from "../config/load.ts";
import { preServeChecks } from "./pre_serve_checks.ts";

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

function lines(r: LoadResult): string[] {
  return r.ok ? [] : r.errors.map(formatConfigError);
}

async function check(text: string): Promise<string[]> {
  return lines(await loadConfigTextChecked(text, "c.yaml", { crossCheck: preServeChecks }));
}

/** A bootstrap with one HCM listener; `hcm` and `chain` are extra YAML lines (indented to their level). */
function bootstrap(
  o: { hcm?: string[]; filters?: string[]; chain?: string[]; clusters?: string[]; top?: string[] },
) {
  return [
    ...(o.top ?? []),
    "static_resources:",
    "  listeners:",
    "  - name: l",
    "    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
    "    filter_chains:",
    "    - filters:",
    ...(o.filters ?? []),
    "      - name: envoy.filters.network.http_connection_manager",
    "        typed_config:",
    `          "@type": ${HCM}`,
    "          stat_prefix: in",
    ...(o.hcm ?? [
      "          route_config:",
      "            virtual_hosts:",
      "            - { name: a, domains: ['*'], routes: [{ match: { prefix: / }, route: { cluster: web } }] }",
      "          http_filters:",
      `          - { name: envoy.filters.http.router, typed_config: { "@type": ${ROUTER} } }`,
    ]),
    ...(o.chain ?? []),
    "  clusters:",
    "  - { name: web, type: STATIC, load_assignment: { cluster_name: web, endpoints: [] } }",
    ...(o.clusters ?? []),
  ].join("\n");
}

const RL_FILTER = [
  "          http_filters:",
  "          - name: envoy.filters.http.ratelimit",
  "            typed_config:",
  '              "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit',
  "              domain: d",
  "              rate_limit_service:",
  "                grpc_service: { envoy_grpc: { cluster_name: ratelimitt } }",
  "                transport_api_version: V3",
  `          - { name: envoy.filters.http.router, typed_config: { "@type": ${ROUTER} } }`,
];

Deno.test("cluster references", async (t) => {
  await t.step("a valid bootstrap passes", async () => {
    assert.deepEqual(await check(bootstrap({})), []);
  });

  await t.step("an HTTP filter nested in the HCM names an unknown cluster (rate limit service)", async () => {
    const hcm = [
      "          route_config:",
      "            virtual_hosts: [{ name: a, domains: ['*'], routes: [{ match: { prefix: / }, route: { cluster: web } }] }]",
      ...RL_FILTER,
    ];
    const fi = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]";
    assert.deepEqual(await check(bootstrap({ hcm })), [
      `c.yaml:19:61: ${fi}.typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name: Unknown cluster "ratelimitt"`,
    ]);
  });

  await t.step(
    "routes: cluster, weighted clusters and mirrors; validate_clusters: false skips them",
    async () => {
      const routes = (extra: string[]) => [
        "          route_config:",
        ...extra,
        "            virtual_hosts:",
        "            - name: a",
        "              domains: ['*']",
        "              routes:",
        "              - match: { prefix: /a }",
        "                route: { cluster: nope }",
        "              - match: { prefix: /b }",
        "                route:",
        "                  weighted_clusters: { clusters: [{ name: web, weight: 1 }, { name: gone, weight: 1 }] }",
        "                  request_mirror_policies: [{ cluster: shadow }]",
        "          http_filters:",
        `          - { name: envoy.filters.http.router, typed_config: { "@type": ${ROUTER} } }`,
      ];
      const rc = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config";
      assert.deepEqual(await check(bootstrap({ hcm: routes([]) })), [
        `c.yaml:17:35: ${rc}.virtual_hosts[0].routes[0].route.cluster: Unknown cluster "nope"`,
        `c.yaml:20:85: ${rc}.virtual_hosts[0].routes[1].route.weighted_clusters.clusters[1].name: Unknown cluster "gone"`,
        `c.yaml:21:56: ${rc}.virtual_hosts[0].routes[1].route.request_mirror_policies[0].cluster: Unknown cluster "shadow"`,
      ]);
      assert.deepEqual(await check(bootstrap({ hcm: routes(["            validate_clusters: false"]) })), []);
    },
  );

  await t.step("network filters: rate limit before the HCM, tcp_proxy", async () => {
    const filters = [
      "      - name: envoy.filters.network.ratelimit",
      "        typed_config:",
      '          "@type": type.googleapis.com/envoy.extensions.filters.network.ratelimit.v3.RateLimit',
      "          stat_prefix: rl",
      "          domain: d",
      "          descriptors: [{ entries: [{ key: k, value: v }] }]",
      "          rate_limit_service: { grpc_service: { envoy_grpc: { cluster_name: rls } } }",
    ];
    const f0 = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
    assert.deepEqual(await check(bootstrap({ filters })), [
      `c.yaml:13:77: ${f0}.rate_limit_service.grpc_service.envoy_grpc.cluster_name: Unknown cluster "rls"`,
    ]);
    const tcp = [
      "static_resources:",
      "  listeners:",
      "  - address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
      "    filter_chains:",
      "    - filters:",
      "      - name: envoy.filters.network.tcp_proxy",
      "        typed_config:",
      '          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
      "          stat_prefix: t",
      "          weighted_clusters: { clusters: [{ name: a, weight: 1 }] }",
    ].join("\n");
    assert.deepEqual(await check(tcp), [
      `c.yaml:10:51: ${f0}.weighted_clusters.clusters[0].name: Unknown cluster "a"`,
    ]);
  });
});

Deno.test("files serving needs are checked without being created", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_preflight_" });
  try {
    const tlsChain = (cert: string, key: string) => [
      "      transport_socket:",
      "        name: envoy.transport_sockets.tls",
      "        typed_config:",
      '          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      "          common_tls_context:",
      "            tls_certificates:",
      `            - certificate_chain: { filename: ${cert} }`,
      `              private_key: { filename: ${key} }`,
    ];
    const ts =
      "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context";

    await t.step("a missing certificate or key file is an error at its filename", async () => {
      await Deno.writeTextFile(`${dir}/k.pem`, "not a key");
      assert.deepEqual(await check(bootstrap({ chain: tlsChain(`${dir}/nope.pem`, `${dir}/k.pem`) })), [
        `c.yaml:22:46: ${ts}.tls_certificates[0].certificate_chain.filename: Cannot read file "${dir}/nope.pem": No such file or directory`,
      ]);
      await Deno.mkdir(`${dir}/d`);
      assert.deepEqual(await check(bootstrap({ chain: tlsChain(`${dir}/k.pem`, `${dir}/d`) })), [
        `c.yaml:23:40: ${ts}.tls_certificates[0].private_key.filename: Cannot read file "${dir}/d": Is a directory`,
      ]);
    });

    await t.step("an unusable certificate/key pair fails validation as it fails serve", async () => {
      const errors = await check(bootstrap({ chain: tlsChain(`${dir}/k.pem`, `${dir}/k.pem`) }));
      assert.equal(errors.length, 1);
      assert.match(errors[0], /^c\.yaml:22:15: .*tls_certificates\[0\]: Invalid certificate chain/);
    });

    await t.step("an upstream trusted_ca file", async () => {
      const clusters = [
        "  - name: up",
        "    type: STATIC",
        "    load_assignment: { cluster_name: up, endpoints: [] }",
        "    transport_socket:",
        "      name: envoy.transport_sockets.tls",
        "      typed_config:",
        '        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        `        common_tls_context: { validation_context: { trusted_ca: { filename: ${dir}/ca.pem } } }`,
      ];
      assert.deepEqual(await check(bootstrap({ clusters })), [
        `c.yaml:25:77: static_resources.clusters[1].transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.filename: Cannot read file "${dir}/ca.pem": No such file or directory`,
      ]);
      // readable but not a CA bundle: a key, garbage, /dev/null
      await Deno.writeTextFile(`${dir}/ca.pem`, "garbage\n");
      const bad = await check(bootstrap({ clusters }));
      assert.equal(bad.length, 1);
      assert.match(
        bad[0],
        /^c\.yaml:25:\d+: static_resources\.clusters\[1\]\..*trusted_ca: Invalid trusted CA: no PEM certificate found$/,
      );
      await Deno.writeTextFile(
        `${dir}/ca.pem`,
        "-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n",
      );
      assert.match((await check(bootstrap({ clusters })))[0], /Invalid trusted CA: certificate 1: /);
      await Deno.remove(`${dir}/ca.pem`);
    });

    const withLog = (path: string) => [
      "          access_log:",
      "          - name: envoy.access_loggers.file",
      `            typed_config: { "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: "${path}" }`,
      "          route_config: { virtual_hosts: [] }",
      `          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": ${ROUTER} } }]`,
    ];
    const al =
      "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.access_log[0].typed_config.path";

    await t.step("an access log in a missing directory is an error at path; nothing is created", async () => {
      assert.deepEqual(await check(bootstrap({ hcm: withLog(`${dir}/no/a.log`) })), [
        `c.yaml:13:119: ${al}: Cannot open file "${dir}/no/a.log" for writing: directory "${dir}/no": No such file or directory`,
      ]);
      assert.deepEqual(await check(bootstrap({ hcm: withLog(`${dir}/new.log`) })), []);
      await assert.rejects(Deno.stat(`${dir}/new.log`), Deno.errors.NotFound);
    });

    await t.step(
      "an existing log file is neither truncated nor written; /dev/stdout and /dev/stderr pass",
      async () => {
        await Deno.writeTextFile(`${dir}/old.log`, "kept\n");
        assert.deepEqual(await check(bootstrap({ hcm: withLog(`${dir}/old.log`) })), []);
        assert.equal(await Deno.readTextFile(`${dir}/old.log`), "kept\n");
        assert.deepEqual(await check(bootstrap({ hcm: withLog("/dev/stdout") })), []);
        assert.deepEqual(await check(bootstrap({ hcm: withLog("/dev/stderr") })), []);
      },
    );

    await t.step("a read-only log file or directory (unless root)", async () => {
      if (Deno.uid() === 0) return; // root may write anywhere
      await Deno.writeTextFile(`${dir}/ro.log`, "");
      await Deno.chmod(`${dir}/ro.log`, 0o444);
      assert.deepEqual(await check(bootstrap({ hcm: withLog(`${dir}/ro.log`) })), [
        `c.yaml:13:119: ${al}: Cannot open file "${dir}/ro.log" for writing: Permission denied`,
      ]);
      await Deno.mkdir(`${dir}/ro`, { mode: 0o555 });
      assert.deepEqual(await check(bootstrap({ hcm: withLog(`${dir}/ro/a.log`) })), [
        `c.yaml:13:119: ${al}: Cannot open file "${dir}/ro/a.log" for writing: directory "${dir}/ro": Permission denied`,
      ]);
    });

    await t.step("admin access logs: access_log entries and the deprecated access_log_path", async () => {
      const top = [
        "admin:",
        "  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
        `  access_log_path: ${dir}/none/admin.log`,
        "  access_log:",
        `  - { name: envoy.access_loggers.file, typed_config: { "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog, path: ${dir}/none/b.log } }`,
      ];
      assert.deepEqual(await check(bootstrap({ top })), [
        `c.yaml:3:20: admin.access_log_path: Cannot open file "${dir}/none/admin.log" for writing: directory "${dir}/none": No such file or directory`,
        `c.yaml:5:146: admin.access_log[0].typed_config.path: Cannot open file "${dir}/none/b.log" for writing: directory "${dir}/none": No such file or directory`,
      ]);
    });
  } finally {
    await Deno.chmod(`${dir}/ro`, 0o755).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a TLS context naming a static secret that does not exist fails validation, as it fails serve", async () => {
  const text = [
    "static_resources:",
    "  clusters:",
    "  - name: up",
    "    type: STATIC",
    "    load_assignment: { cluster_name: up, endpoints: [] }",
    "    transport_socket:",
    "      name: envoy.transport_sockets.tls",
    "      typed_config:",
    '        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    "        common_tls_context: { validation_context_sds_secret_config: { name: ca } }",
  ].join("\n");
  assert.deepEqual(await check(text), [
    'c.yaml:10:77: static_resources.clusters[0].transport_socket.typed_config.common_tls_context.validation_context_sds_secret_config.name: Unknown static secret "ca" (no sds_config and not in static_resources.secrets)',
  ]);
});
