/**
 * envoy.filters.http.ext_authz end to end with real peers: curl as the client, a Deno.serve origin, an HTTP
 * authorization service (Deno.serve) and a gRPC Authorization service on python3-grpcio whose message classes
 * grpc_tools.protoc compiles from Envoy's own external_auth.proto (and its imports) as shipped in
 * npm:@grpc/grpc-js-xds's deps/.
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  type Origin,
  type ParsedResponse,
  parseResponse,
  type Proxy,
  refusedPort,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { PY } from "./python_grpc.ts";

type Obj = Record<string, unknown>;

const ROUTER = {
  name: "envoy.filters.http.router",
  typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
};
const PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";

function extAuthz(config: Obj): Obj {
  return {
    name: "envoy.filters.http.ext_authz",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
      ...config,
    },
  };
}

function perRoute(config: Obj): Obj {
  return { typed_per_filter_config: { "envoy.filters.http.ext_authz": { "@type": PER_ROUTE, ...config } } };
}

function proxyYaml(originPort: number, authzPort: number, filter: Obj, routes?: unknown[]): string {
  return bootstrapYaml(
    [httpListener({
      virtualHosts: [anyHost(routes ?? [{ match: { prefix: "/" }, route: { cluster: "origin" } }])],
      hcm: { http_filters: [extAuthz(filter), ROUTER] },
    })],
    [staticCluster("origin", [originPort]), staticCluster("authz", [authzPort])],
  );
}

/** `curl -i` against the proxy; `args` are extra curl arguments (headers, data). */
async function get(p: Proxy, path: string, args: string[] = []): Promise<ParsedResponse> {
  const r = await curl(["-i", ...args, p.url(path)]);
  assert.equal(r.code, 0, r.stderr);
  return parseResponse(r.stdout);
}

function last(o: Origin) {
  return o.requests[o.requests.length - 1];
}

// ---- HTTP authorization service --------------------------------------------------------------------------

/** The HTTP service: decides by x-user (ann allowed, mallory denied, boom fails, none unauthorized). */
function startHttpAuthz(): Origin {
  return startOrigin("authz", (_req, seen) => {
    const user = seen.headers.get("x-user");
    if (user === "ann") {
      return new Response(null, {
        headers: {
          "x-current-user": "ann",
          "x-tag": "t2",
          "x-authz-said": "ok",
          "x-envoy-auth-headers-to-remove": "x-remove-me",
          "x-not-forwarded": "1",
        },
      });
    }
    if (user === "mallory") {
      return new Response("go away", {
        status: 403,
        headers: { "x-deny-reason": "banned", "x-hidden": "h" },
      });
    }
    if (user === "boom") return new Response("oops", { status: 500 });
    return new Response("who?", { status: 401, headers: { "www-authenticate": 'Basic realm="nuncio"' } });
  });
}

const HTTP_FILTER = {
  http_service: {
    server_uri: { uri: "http://authz/", cluster: "authz", timeout: "2s" },
    path_prefix: "/auth",
    authorization_request: {
      allowed_headers: { patterns: [{ exact: "x-user" }, { prefix: "x-tag" }] },
      headers_to_add: [{ key: "x-from-proxy", value: "nuncio" }, {
        key: "x-client-ip",
        value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
      }],
    },
    authorization_response: {
      allowed_upstream_headers: { patterns: [{ exact: "x-current-user" }] },
      allowed_upstream_headers_to_append: { patterns: [{ exact: "x-tag" }] },
      allowed_client_headers: { patterns: [{ exact: "x-deny-reason" }] },
      allowed_client_headers_on_success: { patterns: [{ exact: "x-authz-said" }] },
    },
  },
};

const HTTP_ROUTES = [
  { match: { prefix: "/public" }, route: { cluster: "origin" }, ...perRoute({ disabled: true }) },
  {
    match: { prefix: "/upload" },
    route: { cluster: "origin" },
    ...perRoute({
      check_settings: { with_request_body: { max_request_bytes: 8, allow_partial_message: true } },
    }),
  },
  {
    match: { prefix: "/strict" },
    route: { cluster: "origin" },
    ...perRoute({ check_settings: { with_request_body: { max_request_bytes: 8 } } }),
  },
  { match: { prefix: "/" }, route: { cluster: "origin" } },
];

Deno.test("ext_authz http_service: allow, deny, error, per-route disabled, request body", async (t) => {
  await using origin = startOrigin("o");
  await using authz = startHttpAuthz();
  await using p = await startProxy(proxyYaml(origin.port, authz.port, HTTP_FILTER, HTTP_ROUTES));

  await t.step("allowed: upstream and client headers from the service", async () => {
    const r = await get(p, "/api?q=1", [
      "-H",
      "x-user: ann",
      "-H",
      "x-tag: t1",
      "-H",
      "x-remove-me: 1",
      "-H",
      "authorization: Bearer abc",
      "-H",
      "x-other: o",
    ]);
    assert.equal(r.status, 200);
    assert.equal(r.body, "hello from o");
    assert.equal(r.headers.get("x-authz-said"), "ok");
    const up = last(origin);
    assert.equal(up.path, "/api?q=1");
    assert.equal(up.headers.get("x-current-user"), "ann");
    assert.equal(up.headers.get("x-tag"), "t1, t2");
    assert.equal(up.headers.get("x-remove-me"), null);
    assert.equal(up.headers.get("x-not-forwarded"), null);
    // what the service saw: the original method, path_prefix + path, Host, only the allowed headers
    const seen = last(authz);
    assert.equal(seen.method, "GET");
    assert.equal(seen.path, "/auth/api?q=1");
    assert.equal(seen.headers.get("host"), `127.0.0.1:${p.port()}`);
    assert.equal(seen.headers.get("authorization"), "Bearer abc");
    assert.equal(seen.headers.get("x-user"), "ann");
    assert.equal(seen.headers.get("x-tag"), "t1");
    assert.equal(seen.headers.get("x-from-proxy"), "nuncio");
    assert.equal(seen.headers.get("x-client-ip"), "127.0.0.1");
    assert.equal(seen.headers.get("content-length"), "0");
    assert.equal(seen.headers.get("x-other"), null);
    assert.equal(seen.headers.get("x-request-id"), null);
  });

  await t.step("denied: the service's status, body and allowed client headers", async () => {
    const r = await get(p, "/api", ["-H", "x-user: mallory"]);
    assert.equal(r.status, 403);
    assert.equal(r.body, "go away");
    assert.equal(r.headers.get("x-deny-reason"), "banned");
    assert.equal(r.headers.get("x-hidden"), undefined);
    const u = await get(p, "/api");
    assert.equal(u.status, 401);
    assert.equal(u.body, "who?");
    assert.equal(u.headers.get("www-authenticate"), 'Basic realm="nuncio"');
  });

  await t.step("a 5xx from the service is an error: 403 without failure_mode_allow", async () => {
    const r = await get(p, "/api", ["-H", "x-user: boom"]);
    assert.equal(r.status, 403);
    assert.equal(r.body, "");
  });

  await t.step("per-route disabled: no check", async () => {
    const before = authz.requests.length;
    const r = await get(p, "/public/x");
    assert.equal(r.status, 200);
    assert.equal(authz.requests.length, before);
  });

  await t.step("with_request_body: a partial body goes to the service, all of it upstream", async () => {
    const r = await get(p, "/upload", ["-H", "x-user: ann", "--data-binary", "0123456789abcdef"]);
    assert.equal(r.status, 200);
    const seen = last(authz);
    assert.equal(seen.method, "POST");
    assert.equal(seen.body, "01234567");
    assert.equal(seen.headers.get("content-length"), "8");
    assert.equal(seen.headers.get("x-envoy-auth-partial-body"), "true");
    assert.equal(last(origin).body, "0123456789abcdef");
    const small = await get(p, "/upload", ["-H", "x-user: ann", "--data-binary", "0123"]);
    assert.equal(small.status, 200);
    assert.equal(last(authz).body, "0123");
    assert.equal(last(authz).headers.get("x-envoy-auth-partial-body"), "false");
  });

  await t.step("with_request_body without allow_partial_message: over max_request_bytes is 413", async () => {
    const before = authz.requests.length;
    const r = await get(p, "/strict", ["-H", "x-user: ann", "--data-binary", "0123456789abcdef"]);
    assert.equal(r.status, 413);
    assert.equal(authz.requests.length, before);
    const ok = await get(p, "/strict", ["-H", "x-user: ann", "--data-binary", "01234567"]);
    assert.equal(ok.status, 200);
    assert.equal(last(authz).body, "01234567");
  });

  await t.step("stats and access log", async () => {
    assert.equal(p.stat("http.ingress.ext_authz.ok"), 4);
    assert.equal(p.stat("http.ingress.ext_authz.denied"), 2);
    assert.equal(p.stat("http.ingress.ext_authz.error"), 1);
    assert.equal(p.stat("cluster.origin.ext_authz.ok"), 4);
    assert.equal(p.stat("cluster.origin.ext_authz.denied"), 2);
    assert.equal(p.stat("cluster.origin.upstream_rq_403"), 1);
    assert.equal(p.stat("cluster.origin.upstream_rq_401"), 1);
    assert.equal(p.stat("cluster.authz.upstream_rq_total"), 7);
    assert.ok(p.stat("cluster.authz.upstream_cx_total") <= 2, "kept-alive connections to the service");
    const log = await p.log(9);
    const denied = log.filter((e) => e.flags === "UAEX");
    assert.deepEqual(denied.map((e) => `${e.code} ${e.details}`), [
      "403 ext_authz_denied",
      "401 ext_authz_denied",
      "403 ext_authz_error",
    ]);
  });
});

Deno.test("ext_authz failure_mode_allow with the service down, status_on_error otherwise", async () => {
  await using origin = startOrigin("o");
  const down = refusedPort();
  {
    await using p = await startProxy(proxyYaml(origin.port, down, {
      ...HTTP_FILTER,
      failure_mode_allow: true,
      failure_mode_allow_header_add: true,
    }));
    const r = await get(p, "/x", ["-H", "x-user: ann"]);
    assert.equal(r.status, 200);
    assert.equal(last(origin).headers.get("x-envoy-auth-failure-mode-allowed"), "true");
    assert.equal(last(origin).headers.get("x-current-user"), null);
    assert.equal(p.stat("http.ingress.ext_authz.error"), 1);
    assert.equal(p.stat("http.ingress.ext_authz.failure_mode_allowed"), 1);
    assert.equal(p.stat("cluster.origin.ext_authz.failure_mode_allowed"), 1);
  }
  {
    await using p = await startProxy(proxyYaml(origin.port, down, {
      ...HTTP_FILTER,
      status_on_error: { code: 503 },
    }));
    const before = origin.requests.length;
    const r = await get(p, "/x", ["-H", "x-user: ann"]);
    assert.equal(r.status, 503);
    assert.equal(origin.requests.length, before);
    const [e] = await p.log(1);
    assert.equal(`${e.code} ${e.flags} ${e.details}`, "503 UAEX ext_authz_error");
  }
});

// ---- gRPC authorization service (python3-grpcio) ---------------------------------------------------------

const SERVER = new URL("./fixtures/ext_authz/authz_server.py", import.meta.url).pathname;
const DEPS = new URL("deps/", import.meta.resolve("@grpc/grpc-js-xds/package.json")).pathname;
const INCLUDES = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => DEPS + d);

/** external_auth.proto and every file it imports (google/protobuf/* ship with grpc_tools). */
async function protoClosure(): Promise<string[]> {
  const seen = new Set<string>();
  const todo = ["envoy/service/auth/v3/external_auth.proto"];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f) || f.startsWith("google/protobuf/")) continue;
    seen.add(f);
    let text: string | null = null;
    for (const d of INCLUDES) {
      try {
        text = await Deno.readTextFile(`${d}/${f}`);
        break;
      } catch {
        // not in this tree
      }
    }
    if (text === null) throw new Error(`${f} not found under ${DEPS}`);
    for (const m of text.matchAll(/^import\s+(?:public\s+)?"([^"]+)"/gm)) todo.push(m[1]);
  }
  return [...seen].sort();
}

/** Compiles the Authorization protos into `dir` and starts the python server; disposing stops it. */
async function startPythonAuthz(dir: string) {
  const out = await new Deno.Command(PY, {
    args: [
      "-m",
      "grpc_tools.protoc",
      ...INCLUDES.map((d) => `-I${d}`),
      `--python_out=${dir}`,
      `--grpc_python_out=${dir}`,
      ...await protoClosure(),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`protoc failed: ${new TextDecoder().decode(out.stderr)}`);
  const child = new Deno.Command(PY, {
    args: [SERVER, dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const r = await lines.read();
    if (r.done) {
      await child.status;
      throw new Error(`Python authz server exited: ${await stderr}`);
    }
    text += r.value;
  }
  const writer = child.stdin.getWriter();
  return {
    port: Number(text.trim()),
    async [Symbol.asyncDispose]() {
      await writer.close();
      await lines.cancel();
      await child.status;
      await stderr;
    },
  };
}

const GRPC_FILTER = {
  grpc_service: { envoy_grpc: { cluster_name: "authz" }, timeout: "1s" },
  transport_api_version: "V3",
  with_request_body: { max_request_bytes: 1024, pack_as_bytes: true },
};

const GRPC_ROUTES = [
  {
    match: { prefix: "/nobuf" },
    route: { cluster: "origin" },
    ...perRoute({ check_settings: { disable_request_body_buffering: true } }),
  },
  {
    match: { prefix: "/ctx" },
    route: { cluster: "origin" },
    ...perRoute({ check_settings: { context_extensions: { team: "payments", tier: "gold" } } }),
  },
  { match: { prefix: "/" }, route: { cluster: "origin" } },
];

Deno.test({
  name: "ext_authz grpc_service against python grpcio: CheckRequest, OK mutations, denials, errors",
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "nuncio_extauthz_" });
    try {
      await using svc = await startPythonAuthz(dir);
      await using origin = startOrigin("o");
      await using p = await startProxy(proxyYaml(origin.port, svc.port, GRPC_FILTER, GRPC_ROUTES));

      await t.step(
        "allowed: headers set, appended and removed, query rewritten, response header",
        async () => {
          const r = await get(p, "/api/x?drop=1&keep=2", [
            "-H",
            "x-authz: allow",
            "-H",
            "x-user: bob",
            "-H",
            "x-tag: client",
            "-H",
            "x-remove-me: 1",
          ]);
          assert.equal(r.status, 200);
          assert.equal(r.headers.get("x-authz-said"), "yes");
          const up = last(origin);
          assert.equal(up.path, "/api/x?added=1&keep=2");
          assert.equal(up.headers.get("x-current-user"), "bob");
          assert.equal(up.headers.get("x-tag"), "client,from-authz");
          assert.equal(up.headers.get("x-remove-me"), null);
          const seen = JSON.parse(up.headers.get("x-seen")!);
          assert.equal(seen.method, "GET");
          assert.equal(seen.path, "/api/x?drop=1&keep=2");
          assert.equal(seen.host, `127.0.0.1:${p.port()}`);
          assert.equal(seen.scheme, "http");
          assert.equal(seen.protocol, "HTTP/1.1");
          assert.equal(seen.source, "127.0.0.1");
          assert.ok(seen.source_port > 0);
          assert.equal(seen.destination_port, p.port());
          assert.equal(seen.has_time, true);
          assert.deepEqual(seen.metadata, {});
          assert.equal(seen.body, "");
          assert.equal(seen.partial, "");
          assert.deepEqual(seen.context, {});
          for (
            const h of [":authority", ":method", ":path", ":scheme", "x-authz", "x-request-id", "x-user"]
          ) {
            assert.ok(seen.headers.includes(h), `${h} in ${seen.headers}`);
          }
          assert.ok(!seen.headers.includes("host"));
        },
      );

      await t.step("request body and context extensions in the CheckRequest", async () => {
        const r = await get(p, "/ctx", ["-H", "x-authz: allow", "--data-binary", "hello"]);
        assert.equal(r.status, 200);
        const seen = JSON.parse(last(origin).headers.get("x-seen")!);
        assert.equal(seen.method, "POST");
        assert.equal(seen.body, "hello");
        assert.equal(seen.partial, "false");
        assert.equal(seen.size, 5);
        assert.deepEqual(seen.context, { team: "payments", tier: "gold" });
        assert.equal(last(origin).body, "hello");
      });

      await t.step("disable_request_body_buffering on a route: no body in the check", async () => {
        const r = await get(p, "/nobuf", ["-H", "x-authz: allow", "--data-binary", "not for authz"]);
        assert.equal(r.status, 200);
        const seen = JSON.parse(last(origin).headers.get("x-seen")!);
        assert.equal(seen.body, "");
        assert.equal(seen.partial, "");
        assert.equal(last(origin).body, "not for authz");
      });

      await t.step("HTTP/2 downstream (h2c): protocol and body", async () => {
        const r = await get(p, "/ctx", [
          "--http2-prior-knowledge",
          "-H",
          "x-authz: allow",
          "--data-binary",
          "h2 body",
        ]);
        assert.equal(r.status, 200);
        const seen = JSON.parse(last(origin).headers.get("x-seen")!);
        assert.equal(seen.protocol, "HTTP/2");
        assert.equal(seen.body, "h2 body");
        assert.equal(last(origin).body, "h2 body");
      });

      await t.step("denied with a custom status, header and body", async () => {
        const r = await get(p, "/api", ["-H", "x-authz: deny"]);
        assert.equal(r.status, 401);
        assert.equal(r.body, "denied by python");
        assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="nuncio"');
        const bare = await get(p, "/api", ["-H", "x-authz: deny-bare"]);
        assert.equal(bare.status, 403);
        assert.equal(bare.body, "");
      });

      await t.step("a failed RPC and a deadline are errors: 403", async () => {
        const before = origin.requests.length;
        assert.equal((await get(p, "/api", ["-H", "x-authz: fail"])).status, 403);
        assert.equal((await get(p, "/api", ["-H", "x-authz: slow"])).status, 403);
        assert.equal(origin.requests.length, before);
      });

      await t.step("dynamic metadata from one check goes to the next in metadata_context", async () => {
        const filters = [
          extAuthz({ ...GRPC_FILTER, stat_prefix: "first" }),
          extAuthz({
            ...GRPC_FILTER,
            stat_prefix: "second",
            metadata_context_namespaces: ["envoy.filters.http.ext_authz", "absent"],
          }),
          ROUTER,
        ].map((f, i) => i < 2 ? { ...f, name: `authz-${i}` } : f);
        const yaml = bootstrapYaml(
          [httpListener({
            virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "origin" } }])],
            hcm: { http_filters: filters },
          })],
          [staticCluster("origin", [origin.port]), staticCluster("authz", [svc.port])],
        );
        await using chain = await startProxy(yaml);
        const r = await get(chain, "/m", ["-H", "x-authz: allow", "-H", "x-user: carol"]);
        assert.equal(r.status, 200);
        const seen = JSON.parse(last(origin).headers.get("x-seen")!);
        const md = seen.metadata.filterMetadata["envoy.filters.http.ext_authz"];
        assert.equal(md.user, "carol");
        assert.equal(md.level, 2);
        assert.equal(typeof md.ext_authz_duration, "number");
        assert.deepEqual(Object.keys(seen.metadata.filterMetadata), ["envoy.filters.http.ext_authz"]);
        assert.equal(chain.stat("http.ingress.ext_authz.first.ok"), 1);
        assert.equal(chain.stat("http.ingress.ext_authz.second.ok"), 1);
        assert.equal(chain.stat("cluster.origin.ext_authz.second.ok"), 1);
      });

      await t.step("validate_mutations: an invalid header from the service is a 500", async () => {
        // without validation the value is taken as it is: the proxy's own HTTP/1.1 encoder refuses it later
        await using strict = await startProxy(
          proxyYaml(origin.port, svc.port, { ...GRPC_FILTER, validate_mutations: true }),
        );
        const r = await get(strict, "/api", ["-H", "x-authz: bad"]);
        assert.equal(r.status, 500);
        assert.equal(strict.stat("http.ingress.ext_authz.invalid"), 1);
        const [e] = await strict.log(1);
        assert.equal(`${e.flags} ${e.details}`, "UAEX ext_authz_invalid");
      });

      await t.step(
        "without validate_mutations an invalid header fails that request alone: 503 LR",
        async () => {
          await using loose = await startProxy(proxyYaml(origin.port, svc.port, GRPC_FILTER));
          const r = await get(loose, "/api", ["-H", "x-authz: bad"]);
          assert.equal(r.status, 503);
          const [e] = await loose.log(1);
          assert.equal(`${e.flags} ${e.details}`, "LR filter_added_invalid_request_data");
          // the proxy goes on serving
          assert.equal((await get(loose, "/api")).status, 200);
        },
      );

      await t.step("stats and response flags", async () => {
        assert.equal(p.stat("http.ingress.ext_authz.ok"), 4);
        assert.equal(p.stat("http.ingress.ext_authz.denied"), 2);
        assert.equal(p.stat("http.ingress.ext_authz.error"), 2);
        assert.equal(p.stat("cluster.origin.ext_authz.error"), 2);
        const log = await p.log(8);
        assert.deepEqual(log.map((e) => `${e.code} ${e.flags}`), [
          "200 -",
          "200 -",
          "200 -",
          "200 -",
          "401 UAEX",
          "403 UAEX",
          "403 UAEX",
          "403 UAEX",
        ]);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("ext_authz grpc_service down with failure_mode_allow", async () => {
  await using origin = startOrigin("o");
  await using p = await startProxy(
    proxyYaml(origin.port, refusedPort(), { ...GRPC_FILTER, failure_mode_allow: true }),
  );
  const r = await get(p, "/x");
  assert.equal(r.status, 200);
  assert.equal(last(origin).headers.get("x-envoy-auth-failure-mode-allowed"), null);
  assert.equal(p.stat("http.ingress.ext_authz.failure_mode_allowed"), 1);
});

Deno.test("ext_authz filter_enabled 0% with deny_at_disable", async () => {
  await using origin = startOrigin("o");
  await using authz = startHttpAuthz();
  const off = { default_value: { numerator: 0, denominator: "HUNDRED" }, runtime_key: "authz.enabled" };
  {
    await using p = await startProxy(
      proxyYaml(origin.port, authz.port, { ...HTTP_FILTER, filter_enabled: off }),
    );
    assert.equal((await get(p, "/x")).status, 200);
    assert.equal(p.stat("http.ingress.ext_authz.disabled"), 1);
  }
  {
    await using p = await startProxy(proxyYaml(origin.port, authz.port, {
      ...HTTP_FILTER,
      filter_enabled: off,
      deny_at_disable: { default_value: true, runtime_key: "authz.deny" },
    }));
    const r = await get(p, "/x");
    assert.equal(r.status, 403);
    const [e] = await p.log(1);
    assert.equal(`${e.flags} ${e.details}`, "UAEX ext_authz_error");
  }
  assert.equal(authz.requests.length, 0);
});

Deno.test("ext_authz denial with every service header and a truncated body", async () => {
  await using origin = startOrigin("o");
  await using authz = startHttpAuthz();
  const { authorization_response: _, ...service } = HTTP_FILTER.http_service;
  await using p = await startProxy(proxyYaml(origin.port, authz.port, {
    http_service: service,
    max_denied_response_body_bytes: 3,
  }));
  const r = await get(p, "/x", ["-H", "x-user: mallory"]);
  assert.equal(r.status, 403);
  assert.equal(r.body, "go ");
  assert.equal(r.headers.get("content-length"), "3");
  assert.equal(r.headers.get("x-deny-reason"), "banned");
  assert.equal(r.headers.get("x-hidden"), "h");
  assert.equal(r.headers.get("content-type"), "text/plain;charset=UTF-8");
  assert.equal(r.headerList.filter(([n]) => n === "content-type" || n === "date").length, 2);
  assert.equal(origin.requests.length, 0);
});

Deno.test("ext_authz clear_route_cache: a header from the service picks the route", async () => {
  await using origin = startOrigin("o");
  await using vip = startOrigin("vip");
  await using authz = startHttpAuthz();
  const routes = [
    {
      match: { prefix: "/", headers: [{ name: "x-current-user", string_match: { exact: "ann" } }] },
      route: { cluster: "vip" },
    },
    { match: { prefix: "/" }, route: { cluster: "origin" } },
  ];
  for (const clear of [true, false]) {
    const yaml = bootstrapYaml(
      [httpListener({
        virtualHosts: [anyHost(routes)],
        hcm: { http_filters: [extAuthz({ ...HTTP_FILTER, clear_route_cache: clear }), ROUTER] },
      })],
      [
        staticCluster("origin", [origin.port]),
        staticCluster("vip", [vip.port]),
        staticCluster("authz", [authz.port]),
      ],
    );
    await using p = await startProxy(yaml);
    const r = await get(p, "/x", ["-H", "x-user: ann"]);
    assert.equal(r.status, 200);
    assert.equal(r.body, clear ? "hello from vip" : "hello from o");
    // the stats go to the cluster the route had when the check started
    assert.equal(p.stat("cluster.origin.ext_authz.ok"), 1);
  }
});
