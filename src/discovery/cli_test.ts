import assert from "node:assert/strict";
import { durationFlag as parseDurationFlag } from "../common/cli_args.ts";
import { parseDiscoveryFlags } from "./cli.ts";

Deno.test("parseDiscoveryFlags: defaults and every flag", () => {
  assert.deepEqual(parseDiscoveryFlags([]), { port: 8080, hostname: "0.0.0.0" });
  assert.deepEqual(
    parseDiscoveryFlags([
      "--port=9000",
      "--host",
      "127.0.0.1",
      "--ttl",
      "10m",
      "--sweep-interval",
      "5s",
      "--redis",
      "redis://127.0.0.1:6380/2",
      "--env",
      "staging",
      "--redis-key-prefix",
      "x:",
      "--redis-timeout-ms",
      "200",
      "-l",
      "info",
    ]),
    {
      port: 9000,
      hostname: "127.0.0.1",
      ttlMs: 600_000,
      sweepIntervalMs: 5000,
      redisUrl: "redis://127.0.0.1:6380/2",
      env: "staging",
      redisKeyPrefix: "x:",
      redisTimeoutMs: 200,
    },
  );
});

Deno.test("parseDiscoveryFlags: usage errors are exit code 1", () => {
  const err = console.error;
  const seen: string[] = [];
  console.error = (m: string) => seen.push(m);
  try {
    for (
      const args of [
        ["--port", "x"],
        ["--ttl", "0"],
        ["--ttl", "ten"],
        ["--redis", "http://x"],
        ["--bogus"],
        ["--port"],
        ["-l", "loud"],
      ]
    ) assert.equal(parseDiscoveryFlags(args), 1, args.join(" "));
  } finally {
    console.error = err;
  }
  assert.match(seen[0], /--port must be a port number/);
  assert.match(seen[4], /Unknown argument "--bogus"/);
});

Deno.test("parseDurationFlag", () => {
  assert.equal(parseDurationFlag("600s", "--ttl"), 600_000);
  assert.equal(parseDurationFlag("600", "--ttl"), 600_000);
  assert.equal(parseDurationFlag("1h", "--ttl"), 3_600_000);
  assert.equal(parseDurationFlag("250ms", "--ttl"), 250);
  assert.equal(parseDurationFlag("0", "--sweep-interval", true), 0);
  assert.throws(() => parseDurationFlag("-1s", "--ttl"), /--ttl must be a duration/);
});
