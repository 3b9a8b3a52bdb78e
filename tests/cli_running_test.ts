/**
 * Running nuncio as a subprocess: a taken port ends start-up with one line; /ready says DRAINING after
 * /healthcheck/fail and while draining; SIGHUP is survived; SIGUSR1 reopens access logs (every worker) and
 * --log-path; --config-yaml, --service-*, --log-format json and --mode init_only.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { waitFor } from "./health_helpers.ts";
import {
  curl,
  type NuncioProcess,
  okListener,
  portFree,
  refusedPort,
  sleep,
  spawnNuncio as spawn,
  staticCluster,
  waitForPort,
} from "./helpers.ts";

type Obj = Record<string, unknown>;

function adminOn(port: number): Obj {
  return { address: { socket_address: { address: "127.0.0.1", port_value: port } } };
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "nuncio_run_" });
}

async function writeConfig(dir: string, doc: Obj): Promise<string> {
  const path = `${dir}/bootstrap.yaml`;
  await Deno.writeTextFile(path, stringify(doc));
  return path;
}

/** Waits for the exit (bounded): a hung process fails the test instead of the suite. */
async function exited(c: NuncioProcess, timeoutMs = 20000): Promise<{ code: number; stderr: string }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      c.proc.kill("SIGKILL");
      reject(new Error("nuncio did not exit"));
    }, timeoutMs);
  });
  try {
    return await Promise.race([c.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function get(url: string, method = "GET"): Promise<{ status: number; body: string }> {
  const r = await curl(["-X", method, "-w", "\n%{http_code}", url]);
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}

async function lines(path: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}

for (const concurrency of [1, 2]) {
  Deno.test(`running: a taken listener port ends start-up with one line (--concurrency ${concurrency})`, async () => {
    const dir = await tempDir();
    const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const taken = (blocker.addr as Deno.NetAddr).port;
    const free = refusedPort();
    const adminPort = refusedPort();
    try {
      const path = await writeConfig(dir, {
        admin: adminOn(adminPort),
        static_resources: {
          listeners: [okListener("first", free, "/dev/null"), okListener("ingress", taken, "/dev/null")],
          clusters: [staticCluster("web", [refusedPort()])],
        },
      });
      const r = await exited(spawn(["-c", path, "--concurrency", String(concurrency)]));
      assert.equal(r.code, 1, r.stderr);
      assert.equal(
        r.stderr,
        `Failed to start: listener "ingress" cannot bind 127.0.0.1:${taken}: address already in use\n`,
      );
      // the listener that did bind and the admin port were let go
      assert.ok(portFree(free));
      assert.ok(portFree(adminPort));
    } finally {
      blocker.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("running: a taken admin port ends start-up with one line, listeners closed", async () => {
  const dir = await tempDir();
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = (blocker.addr as Deno.NetAddr).port;
  const free = refusedPort();
  try {
    const path = await writeConfig(dir, {
      admin: adminOn(taken),
      static_resources: { listeners: [okListener("ingress", free, "/dev/null")], clusters: [] },
    });
    const r = await exited(spawn(["-c", path, "--concurrency", "2"]));
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `Failed to start: admin cannot bind 127.0.0.1:${taken}: address already in use\n`);
    assert.ok(portFree(free));
  } finally {
    blocker.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("running: --mode init_only binds everything, then exits 0", async () => {
  const dir = await tempDir();
  const port = refusedPort();
  const adminPort = refusedPort();
  try {
    const path = await writeConfig(dir, {
      admin: adminOn(adminPort),
      static_resources: { listeners: [okListener("ingress", port, "/dev/null")], clusters: [] },
    });
    const ok = await exited(spawn(["-c", path, "--mode", "init_only", "--concurrency", "2", "-l", "warn"]));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr, "");
    assert.ok(portFree(port) && portFree(adminPort));
    // it really binds: a taken port fails init_only as it fails serve
    const blocker = Deno.listen({ hostname: "127.0.0.1", port });
    try {
      const bad = await exited(spawn(["-c", path, "--mode", "init_only"]));
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^Failed to start: listener "ingress" cannot bind/);
    } finally {
      blocker.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("running: SIGHUP is survived, SIGUSR1 reopens access logs in every worker and --log-path", async () => {
  const dir = await tempDir();
  const port = refusedPort();
  const access = `${dir}/access.log`;
  const logPath = `${dir}/nuncio.log`;
  try {
    const path = await writeConfig(dir, {
      static_resources: { listeners: [okListener("ingress", port, access)], clusters: [] },
    });
    const child = spawn(["-c", path, "--concurrency", "2", "--log-path", logPath, "--log-format", "json"]);
    try {
      await waitForPort(port);
      child.proc.kill("SIGHUP");
      await waitFor(
        "the SIGHUP log line",
        async () => (await lines(logPath)).some((l) => l.includes("SIGHUP")),
        10_000,
      );
      const hup = (await lines(logPath)).map((l) => JSON.parse(l)).find((l) => l.message.includes("SIGHUP"));
      assert.equal(hup.level, "info");
      assert.equal(hup.logger, "main");
      assert.equal(hup.thread, "main_thread");
      // still serving
      for (let i = 0; i < 4; i++) {
        assert.equal((await get(`http://127.0.0.1:${port}/before${i}`)).status, 200);
      }
      await waitFor("4 access log lines", async () => (await lines(access)).length === 4, 10_000);
      // logrotate: move both files away, SIGUSR1, new lines go to new files at the original paths
      await Deno.rename(access, `${access}.1`);
      await Deno.rename(logPath, `${logPath}.1`);
      child.proc.kill("SIGUSR1");
      await waitFor(
        "a new --log-path file",
        async () => (await lines(logPath)).some((l) => l.includes("SIGUSR1")),
        10_000,
      );
      await sleep(200); // the workers' reopen message
      // new connections each: SO_REUSEPORT spreads them over both workers
      for (let i = 0; i < 16; i++) {
        assert.equal((await get(`http://127.0.0.1:${port}/after${i}`)).status, 200);
      }
      await waitFor(
        "16 lines in the new access log",
        async () => (await lines(access)).length === 16,
        10_000,
      );
      assert.equal((await lines(`${access}.1`)).length, 4);
      assert.ok((await lines(access)).every((l) => l.includes("/after")));
    } finally {
      child.proc.kill("SIGTERM");
      const r = await exited(child);
      assert.equal(r.code, 0, r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("running: --config-yaml, --service-*, /ready DRAINING after /healthcheck/fail and while draining", async () => {
  const dir = await tempDir();
  const port = refusedPort();
  const adminPort = refusedPort();
  try {
    const path = await writeConfig(dir, {
      node: { id: "from-file", cluster: "file-cluster" },
      static_resources: { listeners: [okListener("ingress", port, "/dev/null")], clusters: [] },
    });
    const child = spawn([
      "-c",
      path,
      "--config-yaml",
      `admin: {address: {socket_address: {address: 127.0.0.1, port_value: ${adminPort}}}}`,
      "--service-node",
      "edge-7",
      "--service-zone",
      "zone-b",
      "--concurrency",
      "2",
      "-l",
      "warn",
    ]);
    let code: number | undefined;
    try {
      await waitForPort(adminPort);
      const admin = `http://127.0.0.1:${adminPort}`;
      const info = JSON.parse((await get(`${admin}/server_info`)).body);
      assert.deepEqual(info.node, { id: "edge-7", cluster: "file-cluster", locality: { zone: "zone-b" } });
      assert.equal(info.command_line_options.service_node, "edge-7");
      assert.match(info.command_line_options.config_yaml, /port_value/);
      const dump = JSON.parse((await get(`${admin}/config_dump`)).body);
      assert.equal(JSON.stringify(dump).includes('"edge-7"'), true);
      assert.deepEqual(await get(`${admin}/ready`), { status: 200, body: "LIVE\n" });
      assert.equal((await get(`${admin}/healthcheck/fail`, "POST")).status, 200);
      assert.deepEqual(await get(`${admin}/ready`), { status: 503, body: "DRAINING\n" });
      assert.equal(JSON.parse((await get(`${admin}/server_info`)).body).state, "DRAINING");
      assert.equal((await get(`${admin}/healthcheck/ok`, "POST")).status, 200);
      assert.deepEqual(await get(`${admin}/ready`), { status: 200, body: "LIVE\n" });
      // shutting down with a request half sent: the drain waits for it and admin reports DRAINING
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("GET /slow HTTP/1.1\r\n"));
      await sleep(100);
      child.proc.kill("SIGTERM");
      await waitFor(
        "/ready to say DRAINING",
        async () => (await get(`${admin}/ready`)).body === "DRAINING\n",
        10_000,
      );
      assert.equal((await get(`${admin}/ready`)).status, 503);
      conn.close();
      code = (await exited(child)).code;
    } finally {
      if (code === undefined) child.proc.kill("SIGKILL");
      await child.done;
    }
    assert.equal(code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
