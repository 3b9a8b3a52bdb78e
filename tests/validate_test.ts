/**
 * `nuncio --mode validate` as a CI gate, as a subprocess: whatever would stop `serve` (missing certificates,
 * unopenable logs, unknown clusters, unknown @type URLs, an empty file, unsupported alternatives) fails
 * validation with `file:line:col: path: message`; and an access log to /dev/stdout really serves.
 */
import assert from "node:assert/strict";
import { curl, refusedPort, run, sleep, startOrigin } from "./helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";

/** One HCM listener on `port` routing to cluster web; `hcm` lines replace the default route and filters. */
function config(
  o: {
    port?: number;
    hcm?: string[];
    httpFilters?: string[];
    chain?: string[];
    top?: string[];
    webPort?: number;
  },
): string {
  return [
    ...(o.top ?? []),
    "static_resources:",
    "  listeners:",
    "  - name: l",
    `    address: { socket_address: { address: 127.0.0.1, port_value: ${o.port ?? 0} } }`,
    "    filter_chains:",
    "    - filters:",
    "      - name: envoy.filters.network.http_connection_manager",
    "        typed_config:",
    `          "@type": ${HCM}`,
    "          stat_prefix: in",
    ...(o.hcm ?? []),
    "          route_config:",
    "            virtual_hosts: [{ name: a, domains: ['*'], routes: [{ match: { prefix: / }, route: { cluster: web } }] }]",
    ...(o.httpFilters ?? [
      `          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": ${ROUTER} } }]`,
    ]),
    ...(o.chain ?? []),
    "  clusters:",
    "  - name: web",
    "    type: STATIC",
    "    load_assignment:",
    "      cluster_name: web",
    `      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${
      o.webPort ?? 1
    } } } } }] }]`,
  ].join("\n") + "\n";
}

async function validate(
  dir: string,
  text: string,
): Promise<{ code: number; stdout: string; lines: string[] }> {
  const path = `${dir}/c.yaml`;
  await Deno.writeTextFile(path, text);
  const r = await run(Deno.execPath(), ["run", "-A", MAIN, "--mode", "validate", "-c", path], undefined, {
    NO_COLOR: "1",
  });
  return { code: r.code, stdout: r.stdout, lines: r.stderr.split("\n").filter((l) => l !== "") };
}

Deno.test("validate: what serve would fail on fails validation, with file:line:col and path", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_validate_" });
  const c = `${dir}/c.yaml`;
  const f0 = "static_resources.listeners[0].filter_chains[0].filters[0]";
  const expect = async (text: string, lines: string[]) => {
    const r = await validate(dir, text);
    assert.deepEqual(r.lines, lines);
    assert.equal(r.code, lines.length ? 1 : 0);
  };
  try {
    await t.step("a valid config passes", async () => {
      const r = await validate(dir, config({}));
      assert.deepEqual([r.code, r.lines, r.stdout.trim()], [0, [], `configuration '${c}' OK`]);
    });

    await t.step("a missing certificate file", async () => {
      await Deno.writeTextFile(`${dir}/key.pem`, "");
      const chain = [
        "      transport_socket:",
        "        name: envoy.transport_sockets.tls",
        "        typed_config:",
        '          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        "          common_tls_context:",
        "            tls_certificates:",
        `            - certificate_chain: { filename: ${dir}/missing.pem }`,
        `              private_key: { filename: ${dir}/key.pem }`,
      ];
      await expect(config({ chain }), [
        `${c}:20:46: static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0].certificate_chain.filename: Cannot read file "${dir}/missing.pem": No such file or directory`,
      ]);
    });

    await t.step("an access log that cannot be opened; nothing is created", async () => {
      const hcm = [
        "          access_log:",
        `          - { name: envoy.access_loggers.file, typed_config: { "@type": ${FILE_LOG}, path: ${dir}/no/a.log } }`,
      ];
      await expect(config({ hcm }), [
        `${c}:12:154: ${f0}.typed_config.access_log[0].typed_config.path: Cannot open file "${dir}/no/a.log" for writing: directory "${dir}/no": No such file or directory`,
      ]);
      const ok = [
        "          access_log:",
        `          - { name: envoy.access_loggers.file, typed_config: { "@type": ${FILE_LOG}, path: ${dir}/new.log } }`,
        `          - { name: envoy.access_loggers.file, typed_config: { "@type": ${FILE_LOG}, path: /dev/stdout } }`,
      ];
      await expect(config({ hcm: ok }), []);
      await assert.rejects(Deno.stat(`${dir}/new.log`), Deno.errors.NotFound);
    });

    await t.step("the rate-limit filter pointed at an unknown cluster", async () => {
      const httpFilters = [
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
      const text = config({ httpFilters });
      await expect(text, [
        `${c}:19:61: ${f0}.typed_config.http_filters[0].typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name: Unknown cluster "ratelimitt"`,
      ]);
    });

    await t.step("an unknown @type under a known name", async () => {
      const typo = HCM.replace(/Manager$/, "Managr");
      await expect(config({}).replace(`"@type": ${HCM}`, `"@type": ${typo}`), [
        `${c}:9:20: ${f0}.typed_config.@type: Unknown or unsupported network filter type "${typo}"`,
      ]);
    });

    await t.step("an empty or comment-only file", async () => {
      await expect("", [`${c}:1:1: The config file is empty`]);
      await expect("# to do\n\n", [`${c}:1:1: The config file is empty`]);
    });

    await t.step("admin: profile_path is rejected, access_log_path checked", async () => {
      const top = [
        "admin:",
        "  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
        "  profile_path: /tmp/envoy.prof",
        `  access_log_path: ${dir}/none/admin.log`,
      ];
      await expect(config({ top }), [`${c}:3:17: admin.profile_path: Field not supported by nuncio`]);
      await expect(config({ top: top.filter((l) => !l.includes("profile")) }), [
        `${c}:3:20: admin.access_log_path: Cannot open file "${dir}/none/admin.log" for writing: directory "${dir}/none": No such file or directory`,
      ]);
    });

    await t.step("an unsupported alternative of a oneof is named, at its key", async () => {
      const rds = config({}).replace(
        "          route_config:\n            virtual_hosts: [{ name: a, domains: ['*'], routes: [{ match: { prefix: / }, route: { cluster: web } }] }]",
        "          scoped_routes:\n            name: r",
      );
      await expect(rds, [`${c}:11:11: ${f0}.typed_config.scoped_routes: Field not supported by nuncio`]);
      const pipe = config({}).replace(
        "    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }",
        "    address:\n      pipe:\n        path: /tmp/x.sock",
      );
      await expect(pipe, [
        `${c}:5:7: static_resources.listeners[0].address.pipe: Field not supported by nuncio`,
      ]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate then serve: an access log to /dev/stdout and the admin access log reach stdout", async () => {
  await using origin = startOrigin("web");
  const dir = await Deno.makeTempDir({ prefix: "nuncio_validate_" });
  const port = refusedPort();
  const adminPort = refusedPort();
  const text = config({
    port,
    webPort: origin.port,
    top: [
      "admin:",
      `  address: { socket_address: { address: 127.0.0.1, port_value: ${adminPort} } }`,
      `  access_log_path: /dev/stdout`,
    ],
    hcm: [
      "          access_log:",
      `          - { name: envoy.access_loggers.file, typed_config: { "@type": ${FILE_LOG}, path: /dev/stdout, log_format: { text_format: "LOGGED %REQ(:PATH)% %RESPONSE_CODE%\\n" } } }`,
    ],
  });
  assert.deepEqual(await validate(dir, text).then((r) => [r.code, r.lines]), [0, []]);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "-c", `${dir}/c.yaml`, "--concurrency", "1", "--log-level", "warn"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  try {
    let code = "";
    for (let i = 0; i < 200 && code !== "200"; i++) {
      code = (await curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${port}/hello`]))
        .stdout;
      if (code !== "200") await sleep(50);
    }
    assert.equal(code, "200");
    const admin = await curl([
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      `http://127.0.0.1:${adminPort}/ready`,
    ]);
    assert.equal(admin.stdout, "200");
    await sleep(200);
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
  const out = await stdout;
  assert.match(out, /^LOGGED \/hello 200$/m, `stdout:\n${out}\nstderr:\n${await stderr}`);
  // the admin log uses Envoy's default format
  assert.match(out, /"GET \/ready HTTP\/1\.1" 200 /);
  await Deno.remove(dir, { recursive: true });
});
