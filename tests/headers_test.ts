/** Request/response header handling: XFF/XFP, x-envoy-* sanitizing, x-request-id, header mutations. */
import assert from "node:assert/strict";
import {
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";

const add = (key: string, value: string) => ({ header: { key, value } });

Deno.test("http: request and response header handling", async (t) => {
  await using origin = startOrigin("web", () =>
    new Response("ok", {
      headers: { "x-origin-rc": "1", "x-origin-vh": "1", "x-origin-rt": "1", "x-origin-keep": "1" },
    }));
  const vhost = {
    name: "all",
    domains: ["*"],
    request_headers_to_add: [add("x-vh", "vh")],
    request_headers_to_remove: ["x-remove-vh"],
    response_headers_to_add: [add("x-resp-vh", "vh")],
    response_headers_to_remove: ["x-origin-vh"],
    routes: [{
      match: { prefix: "/" },
      route: { cluster: "web" },
      request_headers_to_add: [
        add("x-rt", "rt"),
        add("x-client-ip", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
      ],
      request_headers_to_remove: ["x-remove-rt"],
      response_headers_to_add: [add("x-resp-rt", "rt")],
      response_headers_to_remove: ["x-origin-rt"],
    }],
  };
  const routeConfig = {
    request_headers_to_add: [add("x-rc", "rc")],
    request_headers_to_remove: ["x-remove-rc"],
    response_headers_to_add: [add("x-resp-rc", "rc")],
    response_headers_to_remove: ["x-origin-rc"],
  };
  await using proxy = await startProxy(bootstrapYaml(
    [
      httpListener({
        name: "ext",
        statPrefix: "ext",
        virtualHosts: [vhost],
        routeConfig,
        hcm: {
          use_remote_address: true,
          internal_address_config: { cidr_ranges: [{ address_prefix: "10.0.0.0", prefix_len: 8 }] },
        },
      }),
      httpListener({
        name: "int",
        statPrefix: "int",
        virtualHosts: [vhost],
        routeConfig,
        hcm: { use_remote_address: true },
      }),
    ],
    [staticCluster("web", [origin.port])],
  ));
  const steer = [
    "-H",
    "x-envoy-foo: 1",
    "-H",
    "x-envoy-upstream-rq-timeout-ms: 5",
    "-H",
    "x-request-id: client-chosen-id",
  ];

  await t.step(
    "external client: XFF appended, XFP http, x-envoy-* stripped, request id replaced",
    async () => {
      const r = await curl([
        "-i",
        "-H",
        "x-forwarded-for: 1.2.3.4",
        "-H",
        "x-forwarded-proto: https",
        ...steer,
        proxy.url("/x", "ext"),
      ]);
      assert.equal(parseResponse(r.stdout).status, 200);
      const h = origin.requests.at(-1)!.headers;
      assert.equal(h.get("x-forwarded-for"), "1.2.3.4,127.0.0.1");
      assert.equal(h.get("x-forwarded-proto"), "http");
      assert.equal(h.get("x-envoy-foo"), null);
      assert.equal(h.get("x-envoy-upstream-rq-timeout-ms"), null);
      assert.equal(h.get("x-envoy-internal"), null);
      assert.notEqual(h.get("x-request-id"), "client-chosen-id");
      assert.match(h.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    },
  );

  await t.step("external client without XFF is still external (127.0.0.1 is not in 10/8)", async () => {
    await curl(["-o", "/dev/null", ...steer, proxy.url("/x", "ext")]);
    const h = origin.requests.at(-1)!.headers;
    assert.equal(h.get("x-forwarded-for"), "127.0.0.1");
    assert.equal(h.get("x-envoy-foo"), null);
    assert.equal(h.get("x-envoy-internal"), null);
  });

  await t.step("internal client: x-envoy-* kept, x-envoy-internal set, request id kept", async () => {
    await curl(["-o", "/dev/null", ...steer, proxy.url("/x", "int")]);
    const h = origin.requests.at(-1)!.headers;
    assert.equal(h.get("x-envoy-foo"), "1");
    assert.equal(h.get("x-envoy-internal"), "true");
    assert.equal(h.get("x-request-id"), "client-chosen-id");
    assert.equal(h.get("x-forwarded-for"), "127.0.0.1");
  });

  await t.step("request headers added and removed at route, vhost and route-config level", async () => {
    const r = await curl([
      "-i",
      "-H",
      "x-remove-rc: 1",
      "-H",
      "x-remove-vh: 1",
      "-H",
      "x-remove-rt: 1",
      "-H",
      "x-keep: 1",
      proxy.url("/x", "ext"),
    ]);
    const h = origin.requests.at(-1)!.headers;
    assert.equal(h.get("x-rc"), "rc");
    assert.equal(h.get("x-vh"), "vh");
    assert.equal(h.get("x-rt"), "rt");
    assert.equal(h.get("x-client-ip"), "127.0.0.1");
    assert.equal(h.get("x-remove-rc"), null);
    assert.equal(h.get("x-remove-vh"), null);
    assert.equal(h.get("x-remove-rt"), null);
    assert.equal(h.get("x-keep"), "1");

    const res = parseResponse(r.stdout);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-resp-rc"), "rc");
    assert.equal(res.headers.get("x-resp-vh"), "vh");
    assert.equal(res.headers.get("x-resp-rt"), "rt");
    assert.equal(res.headers.get("x-origin-rc"), undefined);
    assert.equal(res.headers.get("x-origin-vh"), undefined);
    assert.equal(res.headers.get("x-origin-rt"), undefined);
    assert.equal(res.headers.get("x-origin-keep"), "1");
    const logs = await proxy.log(4);
    assert.ok(logs.every((l) => l.code === "200" && l.flags === "-"));
    assert.equal(proxy.stat("http.ext.downstream_rq_2xx"), 3);
    assert.equal(proxy.stat("http.int.downstream_rq_2xx"), 1);
  });
});

Deno.test("http: add_user_agent names the local service cluster and node to the upstream", async () => {
  await using origin = startOrigin("web");
  await using proxy = await startProxy(bootstrapYaml(
    [
      httpListener({
        name: "on",
        virtualHosts: [{
          name: "a",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, route: { cluster: "web" } }],
        }],
        hcm: { add_user_agent: true },
      }),
      httpListener({
        name: "off",
        statPrefix: "off",
        virtualHosts: [{
          name: "a",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, route: { cluster: "web" } }],
        }],
      }),
    ],
    [staticCluster("web", [origin.port])],
    { node: { id: "host-7", cluster: "rides" } },
  ));
  // an external caller's claims are dropped; the proxy states its own service cluster and node
  const r = await curl([
    "-s",
    "-A",
    "",
    "-H",
    "x-envoy-downstream-service-cluster: spoofed",
    `http://127.0.0.1:${proxy.port("on")}/`,
  ]);
  assert.equal(r.code, 0);
  const seen = origin.requests[0].headers;
  assert.equal(seen.get("x-envoy-downstream-service-cluster"), "rides");
  assert.equal(seen.get("x-envoy-downstream-service-node"), "host-7");
  assert.equal(seen.get("user-agent"), "rides");
  // a user-agent the client sent is kept
  await curl(["-s", "-A", "curl-test", `http://127.0.0.1:${proxy.port("on")}/`]);
  assert.equal(origin.requests[1].headers.get("user-agent"), "curl-test");
  assert.equal(origin.requests[1].headers.get("x-envoy-downstream-service-cluster"), "rides");
  // off by default
  await curl(["-s", "-A", "", `http://127.0.0.1:${proxy.port("off")}/`]);
  assert.equal(origin.requests[2].headers.get("x-envoy-downstream-service-cluster"), null);
  assert.equal(origin.requests[2].headers.get("x-envoy-downstream-service-node"), null);
});
