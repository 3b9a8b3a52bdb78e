import assert from "node:assert/strict";
import { parseRatelimitFlags } from "./cli.ts";
import { freePort } from "./test_redis.ts";

Deno.test("ratelimit flags", () => {
  assert.deepEqual(
    parseRatelimitFlags([
      "-c",
      "l.yaml",
      "--redis=redis://r:6379",
      "--port",
      "9000",
      "--http-port",
      "0",
      "--redis-failure-mode",
      "closed",
    ]),
    {
      grpcPort: 9000,
      httpPort: 0,
      hostname: "0.0.0.0",
      limitsPath: "l.yaml",
      redisUrl: "redis://r:6379",
      failureMode: "closed",
    },
  );
  const quiet = { ...console };
  console.error = () => {};
  console.log = () => {};
  try {
    assert.equal(parseRatelimitFlags([]), 1);
    assert.equal(parseRatelimitFlags(["-c", "x", "--redis-failure-mode", "maybe"]), 1);
    assert.equal(parseRatelimitFlags(["-c", "x", "--port", "70000"]), 1);
    assert.equal(parseRatelimitFlags(["-c", "x", "--bogus"]), 1);
    assert.equal(parseRatelimitFlags(["-c"]), 1);
    assert.equal(parseRatelimitFlags(["--help"]), 0);
  } finally {
    Object.assign(console, quiet);
  }
});

Deno.test("runRatelimitCommand serves until SIGTERM and exits 0", async () => {
  const http = freePort();
  const grpc = freePort();
  const url = new URL("./cli.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { runRatelimitCommand } from "${url}"; Deno.exit(await runRatelimitCommand(Deno.args));`,
      "--",
      "-c",
      new URL("../../config/ratelimit.yaml", import.meta.url).pathname,
      "--host",
      "127.0.0.1",
      "--port",
      String(grpc),
      "--http-port",
      String(http),
      "--log-level",
      "error",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    let body = "";
    for (let i = 0; i < 200 && body !== "OK"; i++) {
      await new Promise((r) => setTimeout(r, 50));
      body = await fetch(`http://127.0.0.1:${http}/healthcheck`).then((r) => r.text(), () => "");
    }
    assert.equal(body, "OK");
    const res = await fetch(`http://127.0.0.1:${http}/json`, {
      method: "POST",
      body: JSON.stringify({
        domain: "edge",
        descriptors: [{ entries: [{ key: "remote_address", value: "192.0.2.10" }] }],
        hitsAddend: 6,
      }),
    });
    assert.equal(res.status, 429);
    await res.body?.cancel();
  } finally {
    child.kill("SIGTERM");
    const { code } = await child.status;
    const err = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    assert.equal(code, 0, err);
  }
});
