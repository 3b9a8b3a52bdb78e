import assert from "node:assert/strict";
import "../config/zod_setup.ts";
import "../registry/builtin.ts";
import { formatConfigError } from "../config/errors.ts";
import { loadConfigText } from "../config/load.ts";
import { embeddedRegistryOptions } from "./embedded_config.ts";

const head = `bootstrap_extensions:
- name: nuncio.bootstrap.discovery
  typed_config:
    "@type": type.googleapis.com/nuncio.discovery.v1.EmbeddedRegistry
`;

function load(body: string) {
  return loadConfigText(head + body, "b.yaml");
}

Deno.test("nuncio.bootstrap.discovery: a config parses into service options", () => {
  const r = load(`    address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }
    ttl: 30s
    sweep_interval: 0s
    env: qa
    redis: { url: "redis://127.0.0.1:6379/2", key_prefix: "x:", timeout: 0.5s }
`);
  assert.ok(r.ok, r.ok ? "" : r.errors.map(formatConfigError).join("\n"));
  const ext = r.bootstrap.bootstrap_extensions[0];
  assert.equal(ext.ext.name, "nuncio.bootstrap.discovery");
  assert.deepEqual(embeddedRegistryOptions(ext.config as never), {
    hostname: "127.0.0.1",
    port: 8080,
    ttlMs: 30_000,
    sweepIntervalMs: 0,
    env: "qa",
    redisUrl: "redis://127.0.0.1:6379/2",
    redisKeyPrefix: "x:",
    redisTimeoutMs: 500,
  });
  // memory store and the service's defaults when only the address is given
  const min = load("    address: { socket_address: { address: 0.0.0.0, port_value: 0 } }\n");
  assert.ok(min.ok);
  assert.deepEqual(embeddedRegistryOptions(min.bootstrap.bootstrap_extensions[0].config as never), {
    hostname: "0.0.0.0",
    port: 0,
  });
});

Deno.test("nuncio.bootstrap.discovery: errors carry file:line:col and the field path", () => {
  const r = load(`    address: { socket_address: { address: 127.0.0.1, port_value: 70000 } }
    ttl: 0s
    sweep_interval: soon
    env: ""
    redis: { url: "http://redis:6379", colour: blue }
    tll: 5s
`);
  assert.equal(r.ok, false);
  const lines = r.ok ? [] : r.errors.map(formatConfigError);
  const p = "bootstrap_extensions[0].typed_config";
  assert.deepEqual(lines, [
    `b.yaml:5:66: ${p}.address.socket_address.port_value: Too big: expected number to be <=65535`,
    `b.yaml:6:10: ${p}.ttl: Expected a positive duration`,
    `b.yaml:7:21: ${p}.sweep_interval: Invalid duration: expected a string like "1s" or "0.25s", or {seconds, nanos}`,
    `b.yaml:8:10: ${p}.env: Too small: expected string to have >=1 characters`,
    `b.yaml:9:19: ${p}.redis.url: Expected a redis://[user:pass@]host:port[/db] URL`,
    `b.yaml:9:40: ${p}.redis.colour: Unknown field`,
    `b.yaml:10:5: ${p}.tll: Unknown field`,
  ]);
  const missing = load("    ttl: 5s\n");
  assert.equal(missing.ok, false);
  const m = missing.ok ? [] : missing.errors.map(formatConfigError);
  assert.ok(m.some((l) => l.includes(`${p}.address`)), m.join("\n"));
});
