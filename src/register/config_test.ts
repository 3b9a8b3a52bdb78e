import assert from "node:assert/strict";
import "../config/zod_setup.ts";
import "../registry/builtin.ts";
import { formatConfigError } from "../config/errors.ts";
import { loadConfigText } from "../config/load.ts";
import { registerOptions } from "./config.ts";

const head = `bootstrap_extensions:
- name: nuncio.bootstrap.register
  typed_config:
    "@type": type.googleapis.com/nuncio.register.v1.Register
`;

function load(body: string) {
  return loadConfigText(head + body, "b.yaml");
}

Deno.test("nuncio.bootstrap.register: a full config parses into agent options", () => {
  const r = load(`    service: users
    port: 9211
    ip: 10.0.0.7
    registry_url: http://discovery:8080
    every: 30s
    revision: abc
    service_repo_name: users-svc
    tags: { az: us-east-1a, region: us-east-1, instance_id: i-1, canary: true, load_balancing_weight: 3 }
    health_url: http://127.0.0.1:9211/healthcheck
`);
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
  const ext = r.bootstrap.bootstrap_extensions[0];
  assert.equal(ext.ext.name, "nuncio.bootstrap.register");
  assert.deepEqual(registerOptions(ext.config as never), {
    service: "users",
    port: 9211,
    ip: "10.0.0.7",
    registryUrl: "http://discovery:8080",
    everyMs: 30_000,
    jitter: 0.1,
    revision: "abc",
    repo: "users-svc",
    tags: {
      az: "us-east-1a",
      region: "us-east-1",
      instance_id: "i-1",
      canary: true,
      load_balancing_weight: 3,
    },
    healthUrl: "http://127.0.0.1:9211/healthcheck",
  });
  const min = load("    service: users\n    port: 9211\n    registry_url: http://discovery:8080\n");
  assert.ok(min.ok);
  assert.deepEqual(registerOptions(min.bootstrap.bootstrap_extensions[0].config as never, () => "10.9.9.9"), {
    service: "users",
    port: 9211,
    ip: "10.9.9.9",
    registryUrl: "http://discovery:8080",
    everyMs: 60_000,
    jitter: 0.1,
  });
});

Deno.test("nuncio.bootstrap.register: errors carry file:line:col and the field path", () => {
  const r = load(`    service: users
    port: 0
    ip: not-an-ip
    registry_url: discovery:8080
    every: soon
    tags: { canary: "yes", load_balancing_weight: 0, colour: blue }
    health_url: nope
    tll: 5s
`);
  assert.equal(r.ok, false);
  const lines = r.ok ? [] : r.errors.map(formatConfigError);
  const p = "bootstrap_extensions[0].typed_config";
  assert.deepEqual(lines, [
    `b.yaml:6:11: ${p}.port: Too small: expected number to be >=1`,
    `b.yaml:7:9: ${p}.ip: Expected an IPv4 or IPv6 address`,
    `b.yaml:8:19: ${p}.registry_url: Expected an http:// or https:// URL`,
    `b.yaml:9:12: ${p}.every: Invalid duration: expected a string like "1s" or "0.25s", or {seconds, nanos}`,
    `b.yaml:10:21: ${p}.tags.canary: Invalid input: expected boolean, received string`,
    `b.yaml:10:51: ${p}.tags.load_balancing_weight: Too small: expected number to be >=1`,
    `b.yaml:10:54: ${p}.tags.colour: Unknown field`,
    `b.yaml:11:17: ${p}.health_url: Expected an http:// or https:// URL`,
    `b.yaml:12:5: ${p}.tll: Unknown field`,
  ]);
  const missing = load("    port: 9211\n");
  assert.equal(missing.ok, false);
  const m = missing.ok ? [] : missing.errors.map(formatConfigError);
  assert.ok(
    m.some((l) => l.includes(`${p}.service`)) && m.some((l) => l.includes(`${p}.registry_url`)),
    m.join("\n"),
  );
});
