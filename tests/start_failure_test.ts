/**
 * A taken port ends start-up with one line and nothing nuncio bound stays bound, checked in-process: the
 * ports are bound again by this test while its process is alive (a child's exit would free them anyway).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import type { Bootstrap } from "../src/config/bootstrap.ts";
import { formatConfigError } from "../src/config/errors.ts";
import { loadConfigSource } from "../src/config/overlay.ts";
import { startAdmin } from "../src/server/admin_wiring.ts";
import { DataPlane } from "../src/server/data_plane.ts";
import { preServeChecks } from "../src/server/pre_serve_checks.ts";
import { Server } from "../src/server/server.ts";
import { okListener, portFree, refusedPort, staticCluster } from "./helpers.ts";

/** Ports of one scenario: `taken` is held by this test for its whole run. */
interface Scenario extends AsyncDisposable {
  path: string;
  bootstrap: Bootstrap;
  raw: unknown;
}

/** Writes and loads (as `nuncio -c` does) a bootstrap with listeners `first` and `ingress` and admin. */
async function scenario(first: number, ingress: number, admin: number): Promise<Scenario> {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_start_failure_" });
  const path = `${dir}/bootstrap.yaml`;
  await Deno.writeTextFile(
    path,
    stringify({
      admin: { address: { socket_address: { address: "127.0.0.1", port_value: admin } } },
      static_resources: {
        listeners: [okListener("first", first), okListener("ingress", ingress)],
        clusters: [staticCluster("web", [refusedPort()])],
      },
    }),
  );
  const loaded = await loadConfigSource({ path }, { crossCheck: preServeChecks });
  if (!loaded.ok) throw new Error(loaded.errors.map(formatConfigError).join("\n"));
  return {
    path,
    bootstrap: loaded.bootstrap,
    raw: loaded.raw,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function server(s: Scenario, concurrency: number): Server {
  return new Server(s.bootstrap, {
    configPath: s.path,
    concurrency,
    logLevel: "info",
    raw: s.raw,
    commandLine: [],
  });
}

/** A socket holding a port (no reusePort, so workers binding with reusePort fail too). */
function hold(): Deno.Listener & { port: number } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return Object.assign(l, { port: (l.addr as Deno.NetAddr).port });
}

const bindError = (port: number) =>
  `listener "ingress" cannot bind 127.0.0.1:${port}: address already in use`;

for (const reusePort of [false, true]) {
  Deno.test(`start failure: DataPlane.start frees the ports it bound before it rejects (reusePort ${reusePort})`, async () => {
    using blocker = hold();
    const free = refusedPort();
    await using s = await scenario(free, blocker.port, refusedPort());
    const plane = new DataPlane(s.bootstrap);
    try {
      await assert.rejects(plane.start(reusePort), { message: bindError(blocker.port) });
      // no stop() and no waiting: `first` was bound, and is free the moment start() has rejected
      assert.ok(portFree(free), `port ${free} of listener "first" is still bound after start() rejected`);
    } finally {
      await plane.stop();
    }
  });
}

Deno.test("start failure: Server.start (--concurrency 1) rejects with one line, nothing left bound", async () => {
  using blocker = hold();
  const free = refusedPort();
  const adminPort = refusedPort();
  await using s = await scenario(free, blocker.port, adminPort);
  const srv = server(s, 1);
  try {
    await assert.rejects(srv.start(), { message: bindError(blocker.port) });
    assert.ok(portFree(free), "listener first's port is free right after the rejection");
    assert.ok(portFree(adminPort), "the admin port is free (run.ts starts admin only after the listeners)");
  } finally {
    await srv.stop(0);
  }
});

Deno.test("start failure: Server.start (--concurrency 2) rejects with one line; after stop(0) nothing is bound", async () => {
  using blocker = hold();
  const free = refusedPort();
  const adminPort = refusedPort();
  await using s = await scenario(free, blocker.port, adminPort);
  const srv = server(s, 2);
  let stopped = false;
  try {
    await assert.rejects(srv.start(), { message: bindError(blocker.port) });
    // run.ts's sequence: start() rejects at the first worker's error (others may still be starting), stop(0)
    await srv.stop(0);
    stopped = true;
    assert.ok(portFree(free), "no worker still holds listener first's port");
    assert.ok(portFree(adminPort), "the admin port is free");
  } finally {
    if (!stopped) await srv.stop(0);
  }
});

for (const concurrency of [1, 2]) {
  Deno.test(`start failure: a taken admin port, then stop(0) frees every listener port (--concurrency ${concurrency})`, async () => {
    using blocker = hold();
    const first = refusedPort();
    const ingress = refusedPort();
    await using s = await scenario(first, ingress, blocker.port);
    const srv = server(s, concurrency);
    let stopped = false;
    try {
      await srv.start();
      assert.ok(!portFree(first) && !portFree(ingress), "the listeners are bound");
      await assert.rejects(startAdmin(srv, s.bootstrap), {
        message: `admin cannot bind 127.0.0.1:${blocker.port}: address already in use`,
      });
      await srv.stop(0);
      stopped = true;
      assert.ok(portFree(first), "listener first's port is free while this process lives");
      assert.ok(portFree(ingress), "listener ingress's port is free while this process lives");
    } finally {
      if (!stopped) await srv.stop(0);
    }
  });
}
