import assert from "node:assert/strict";
import { parseControlPlaneFlags } from "./cli.ts";

Deno.test("parseControlPlaneFlags: defaults and every flag", () => {
  assert.deepEqual(parseControlPlaneFlags(["--manifests", "m", "--defaults=d.yaml"]), {
    paths: { manifests: "m", defaults: "d.yaml" },
    port: 18080,
    grpcPort: 18000,
    hostname: "0.0.0.0",
    validate: false,
  });
  assert.deepEqual(
    parseControlPlaneFlags([
      "--manifests=m",
      "--defaults=d.yaml",
      "--edge=e.yaml",
      "--registry=http://reg:8080",
      "--registry-refresh=2s",
      "--ttl=10m",
      "--port=0",
      "--grpc-port=19000",
      "--host=127.0.0.1",
      "--watch-interval=0",
      "--load-report-interval=500ms",
      "--validate",
      "-l",
      "warn",
    ]),
    {
      paths: { manifests: "m", defaults: "d.yaml", edge: "e.yaml" },
      port: 0,
      grpcPort: 19000,
      hostname: "127.0.0.1",
      validate: true,
      registryUrl: "http://reg:8080",
      registryRefreshMs: 2000,
      registryTtlMs: 600_000,
      watchIntervalMs: 0,
      loadReportIntervalMs: 500,
    },
  );
});

Deno.test("parseControlPlaneFlags: usage errors are exit code 1 with the reason first", () => {
  const seen: string[] = [];
  const error = console.error;
  console.error = (m: string) => seen.push(m);
  try {
    for (
      const args of [
        ["--defaults=d"],
        ["--manifests=m"],
        ["--manifests=m", "--defaults=d", "--port=70000"],
        ["--manifests=m", "--defaults=d", "--registry=reg:8080"],
        ["--manifests=m", "--defaults=d", "--watch-interval=soon"],
        ["--manifests=m", "--defaults=d", "--bogus"],
        ["--manifests=m", "--defaults=d", "-l", "loud"],
      ]
    ) assert.equal(parseControlPlaneFlags(args), 1, args.join(" "));
  } finally {
    console.error = error;
  }
  assert.deepEqual(seen.slice(0, 6).map((s) => s.split("\n")[0]), [
    "--manifests DIR is required",
    "--defaults FILE is required",
    "--port must be a port number",
    "--registry must be an http:// URL",
    '--watch-interval must be a duration such as 30s, 500ms, 10m or 1h, not "soon"',
    'Unknown argument "--bogus"',
  ]);
  assert.match(seen[6].split("\n")[0], /loud/);
});
