import assert from "node:assert/strict";
import { onPath, type Peer, PEERS, planPeers } from "./peers.ts";

const env = (missing: string[], root: boolean, apt = true) => ({
  present: (p: Peer) => !missing.includes(p.name),
  root,
  apt,
});

Deno.test("peers: nothing to do when every peer is present", () => {
  assert.deepEqual(planPeers(env([], false)), { action: "none" });
});

Deno.test("peers: root with apt installs every missing package in one go, each package once", () => {
  const plan = planPeers(env(["h2load", "nghttp", "python3-grpcio", "grpc-tools", "redis-server"], true));
  assert.equal(plan.action, "install");
  assert.deepEqual(plan.action === "install" && plan.packages, [
    "nghttp2-client",
    "redis-server",
    "python3-grpcio",
    "python3-grpc-tools",
  ]);
});

Deno.test("peers: without root, one line naming the packages and the command, and a stop", () => {
  const plan = planPeers(env(["wrk", "promtool"], false));
  assert.equal(plan.action, "stop");
  assert.equal(
    plan.action === "stop" && plan.message,
    "Missing test peers: wrk, promtool; install them with: sudo apt-get update && sudo apt-get install -y wrk prometheus",
  );
  const noApt = planPeers(env(["wrk"], true, false));
  assert.equal(noApt.action, "stop");
  assert.match(noApt.action === "stop" ? noApt.message : "", /install the Debian packages wrk/);
});

Deno.test("peers: the list covers what the suite and the bench call", () => {
  const names = PEERS.map((p) => p.name);
  for (
    const n of [
      "curl",
      "h2load",
      "redis-server",
      "python3-grpcio",
      "grpc-tools",
      "openssl",
      "nginx",
      "haproxy",
    ]
  ) {
    assert.ok(names.includes(n), n);
  }
  assert.ok(names.includes("wrk") && names.includes("promtool"));
});

Deno.test("peers: onPath finds executables only", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/tool`, "#!/bin/sh\n");
    await Deno.writeTextFile(`${dir}/data`, "");
    await Deno.chmod(`${dir}/tool`, 0o755);
    await Deno.chmod(`${dir}/data`, 0o644);
    assert.equal(onPath("tool", `/nonexistent:${dir}`), true);
    assert.equal(onPath("data", dir), false);
    assert.equal(onPath("absent", dir), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
