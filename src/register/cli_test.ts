import assert from "node:assert/strict";
import { parseRegisterFlags } from "./cli.ts";
import { defaultHostIp } from "./options.ts";

const HOST_IP = () => "10.1.2.3";

Deno.test("register flags: defaults and every option", () => {
  assert.deepEqual(parseRegisterFlags(["--service", "users", "--port", "9211"], HOST_IP), {
    service: "users",
    port: 9211,
    ip: "10.1.2.3",
    registryUrl: "http://127.0.0.1:8080",
    everyMs: 60_000,
    jitter: 0.1,
  });
  assert.deepEqual(
    parseRegisterFlags([
      "--service=users",
      "--port=9211",
      "--ip",
      "192.0.2.9",
      "--registry",
      "https://discovery.internal:8443",
      "--every",
      "500ms",
      "--jitter",
      "25%",
      "--revision",
      "abc123",
      "--repo",
      "users-svc",
      "--tag",
      "az=us-east-1a",
      "--tag",
      "region=us-east-1",
      "--tag",
      "instance_id=i-0abc",
      "--tag",
      "canary=true",
      "--tag",
      "load_balancing_weight=5",
      "--health-url",
      "http://127.0.0.1:9211/healthcheck",
      "--timeout",
      "2s",
      "--log-level",
      "warn",
    ], HOST_IP),
    {
      service: "users",
      port: 9211,
      ip: "192.0.2.9",
      registryUrl: "https://discovery.internal:8443",
      everyMs: 500,
      jitter: 0.25,
      revision: "abc123",
      repo: "users-svc",
      tags: {
        az: "us-east-1a",
        region: "us-east-1",
        instance_id: "i-0abc",
        canary: true,
        load_balancing_weight: 5,
      },
      healthUrl: "http://127.0.0.1:9211/healthcheck",
      requestTimeoutMs: 2000,
    },
  );
  assert.equal(
    (parseRegisterFlags(["--service", "s", "--port", "1", "--every", "5m"]) as { everyMs: number }).everyMs,
    300_000,
  );
  assert.equal(
    (parseRegisterFlags(["--service", "s", "--port", "1", "--every", "90"]) as { everyMs: number }).everyMs,
    90_000,
  );
  assert.equal(
    (parseRegisterFlags(["--service", "s", "--port", "1", "--jitter", "0"]) as { jitter: number }).jitter,
    0,
  );
  parseRegisterFlags(["--service", "s", "--port", "1", "-l", "info"]);
});

Deno.test("register flags: usage errors name the problem", () => {
  const errors: string[] = [];
  const saved = { ...console };
  console.error = (m: string) => errors.push(m.split("\n")[0]);
  console.log = () => {};
  try {
    const bad = (args: string[]) =>
      assert.equal(parseRegisterFlags(["--service", "s", "--port", "1", ...args], HOST_IP), 1);
    assert.equal(parseRegisterFlags(["--port", "1"], HOST_IP), 1);
    assert.equal(parseRegisterFlags(["--service", "s"], HOST_IP), 1);
    bad(["--port", "0"]);
    bad(["--port", "70000"]);
    bad(["--ip", "10.0.0"]);
    bad(["--registry", "ftp://x"]);
    bad(["--every", "0s"]);
    bad(["--every", "soon"]);
    bad(["--jitter", "100%"]);
    bad(["--tag", "canary=yes"]);
    bad(["--tag", "load_balancing_weight=0"]);
    bad(["--tag", "load_balancing_weight=1.5"]);
    bad(["--tag", "color=blue"]);
    bad(["--tag", "az"]);
    bad(["--tag", "az=a", "--tag", "az=b"]);
    bad(["--health-url", "nope"]);
    bad(["--bogus"]);
    bad(["--every"]);
    bad(["-l", "loud"]);
    assert.equal(parseRegisterFlags(["--service", "a/b", "--port", "1"], HOST_IP), 1);
    assert.equal(parseRegisterFlags(["--help"], HOST_IP), 0);
  } finally {
    Object.assign(console, saved);
  }
  assert.deepEqual(errors, [
    "--service is required",
    "--port is required",
    '--port must be a port number (1-65535), not "0"',
    '--port must be a port number (1-65535), not "70000"',
    '--ip must be an IPv4 or IPv6 address, not "10.0.0"',
    '--registry: Expected an http:// or https:// URL, not "ftp://x"',
    '--every must be a duration such as 30s, 500ms, 10m or 1h, not "0s"',
    '--every must be a duration such as 30s, 500ms, 10m or 1h, not "soon"',
    '--jitter must be a percentage from 0% to 99%, not "100%"',
    'Tag canary must be true or false, not "yes"',
    'Tag load_balancing_weight must be a positive integer, not "0"',
    'Tag load_balancing_weight must be a positive integer, not "1.5"',
    'Unknown tag "color" (one of az, region, instance_id, canary, load_balancing_weight)',
    '--tag expects k=v, not "az"',
    "Tag az given twice",
    '--health-url: Expected an http:// or https:// URL, not "nope"',
    'Unknown argument "--bogus"',
    "--every needs a value",
    'Unknown log level "loud" (one of trace, debug, info, warn, error, critical, off)',
    'The service name "a/b" contains "/"',
  ]);
});

Deno.test("register: the default IP is the first non-loopback IPv4, else 127.0.0.1", () => {
  const nic = (
    address: string,
    family: "IPv4" | "IPv6",
  ) => ({ address, family } as Deno.NetworkInterfaceInfo);
  assert.equal(
    defaultHostIp(() => [nic("127.0.0.1", "IPv4"), nic("fe80::1", "IPv6"), nic("10.0.0.7", "IPv4")]),
    "10.0.0.7",
  );
  assert.equal(defaultHostIp(() => [nic("127.0.0.1", "IPv4"), nic("169.254.1.1", "IPv4")]), "127.0.0.1");
  assert.equal(
    defaultHostIp(() => {
      throw new Error("no --allow-sys");
    }),
    "127.0.0.1",
  );
});
