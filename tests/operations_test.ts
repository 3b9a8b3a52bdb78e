/**
 * Running nuncio on plain VMs: `nuncio hot-restarter` (SIGHUP deploys the next epoch, a failing epoch leaves
 * the running one serving, SIGTERM stops everything), and the systemd units in config/systemd (checked by
 * `systemd-analyze verify`, their command lines by the roles' own flag parsers).
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { parseControlPlaneFlags } from "../src/control_plane/cli.ts";
import { parseDiscoveryFlags } from "../src/discovery/cli.ts";
import { parseRatelimitFlags } from "../src/ratelimit/cli.ts";
import { parseCliFlags } from "../src/server/cli_flags.ts";
import { okListener, refusedPort, run, sleep } from "./helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const UNITS = `${ROOT}config/systemd`;

async function epochServing(admin: number): Promise<number | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${admin}/stats?filter=hot_restart_epoch`);
    const m = /server\.hot_restart_epoch: (\d+)/.exec(await r.text());
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function waitFor(what: string, f: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return;
    await sleep(50);
  }
  throw new Error(`timed out: ${what}`);
}

Deno.test("nuncio hot-restarter: SIGHUP deploys the next epoch; a failing one leaves the running one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_restarter_" });
  const [port, admin] = [refusedPort(), refusedPort()];
  const config = `${dir}/bootstrap.yaml`;
  const write = (body: string) =>
    Deno.writeTextFileSync(
      config,
      stringify({
        admin: { address: { socket_address: { address: "127.0.0.1", port_value: admin } } },
        static_resources: {
          listeners: [
            JSON.parse(
              JSON.stringify(okListener("edge", port)).replace(
                '"inline_string":"ok"',
                `"inline_string":"${body}"`,
              ),
            ),
          ],
          clusters: [],
        },
      }),
    );
  write("one");
  const script = `${dir}/start-nuncio.sh`;
  Deno.writeTextFileSync(
    script,
    `#!/bin/sh\nexec "${Deno.execPath()}" run -A "${ROOT}main.ts" -c "${config}" --restart-epoch "$RESTART_EPOCH" ` +
      `--socket-path "${dir}/hr" --concurrency 1 --drain-time-s 0.2 --parent-shutdown-time-s 1\n`,
  );
  Deno.chmodSync(script, 0o755);
  const restarter = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}main.ts`, "hot-restarter", script],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  // the restarter's log as it is written
  let log = "";
  const stderr = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of restarter.stderr) log += dec.decode(chunk, { stream: true });
    return log;
  })();
  const body = async () => {
    try {
      return await (await fetch(`http://127.0.0.1:${port}/`)).text();
    } catch {
      return "refused";
    }
  };
  try {
    await waitFor("epoch 0", async () => await epochServing(admin) === 0);
    assert.equal(await body(), "one");

    // the deploy: a new config, SIGHUP
    write("two");
    restarter.kill("SIGHUP");
    await waitFor("epoch 1 serving", async () => await epochServing(admin) === 1 && await body() === "two");

    // a config that does not load: epoch 2 fails, epoch 1 keeps serving
    Deno.writeTextFileSync(config, Deno.readTextFileSync(config).replace("socket_address", "sock_address"));
    restarter.kill("SIGHUP");
    await waitFor("epoch 2 failed", () => Promise.resolve(log.includes("epoch 2 failed")));
    assert.equal(await epochServing(admin), 1);
    assert.equal(await body(), "two");

    // fixed: the same epoch number is tried again and takes over
    write("three");
    restarter.kill("SIGHUP");
    await waitFor("epoch 2 serving", async () => await epochServing(admin) === 2 && await body() === "three");
  } finally {
    restarter.kill("SIGTERM");
    const status = await restarter.status;
    await stderr;
    assert.equal(status.code, 0, log);
    assert.match(log, /started epoch 0/);
    assert.match(log, /epoch 0 exited\n/);
    assert.match(log, /epoch 2 failed; epoch 1 keeps serving/);
    assert.equal([...log.matchAll(/started epoch 2/g)].length, 2, log);
    assert.match(log, /stopping every epoch/);
    await Deno.remove(dir, { recursive: true });
  }
});

/** `Key=value` lines of a unit's section, in order (repeated keys kept). */
function unitEntries(text: string): [string, string][] {
  return text.split("\n").filter((l) => /^[A-Za-z]+=/.test(l)).map((l) => {
    const i = l.indexOf("=");
    return [l.slice(0, i), l.slice(i + 1)];
  });
}

Deno.test("systemd units: systemd-analyze verify is clean; their nuncio command lines parse", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_units_" });
  try {
    // the binary path must name an executable for verify: a stand-in at a path of our own
    const bin = `${dir}/nuncio`;
    Deno.writeTextFileSync(bin, "#!/bin/sh\nexit 0\n");
    Deno.chmodSync(bin, 0o755);
    const units: string[] = [];
    for (const e of Deno.readDirSync(UNITS)) {
      if (!e.name.endsWith(".service")) continue;
      const text = Deno.readTextFileSync(`${UNITS}/${e.name}`)
        .replaceAll("/usr/local/bin/nuncio", bin)
        .replaceAll("/usr/local/lib/nuncio/start-nuncio.sh", `${UNITS}/start-nuncio.sh`);
      Deno.writeTextFileSync(`${dir}/${e.name}`, text);
      units.push(`${dir}/${e.name}`);
    }
    assert.deepEqual(units.map((u) => u.slice(dir.length + 1)).sort(), [
      "nuncio-control-plane.service",
      "nuncio-discovery.service",
      "nuncio-ratelimit.service",
      "nuncio.service",
    ]);
    const verify = await run("systemd-analyze", ["verify", ...units]);
    assert.equal(verify.code, 0, verify.stderr);
    // verify only warns about unknown keys and bad values: a warning is a failure here
    assert.equal(verify.stderr.trim(), "", verify.stderr);

    for (const name of units) {
      const entries = unitEntries(Deno.readTextFileSync(name));
      const env = new Map(
        entries.filter(([k]) => k === "Environment").map(([, v]) => v.split("=") as [string, string]),
      );
      const expand = (s: string) => s.replace(/\$\{(\w+)\}/g, (_, k) => env.get(k) ?? "");
      assert.ok(entries.some(([k, v]) => k === "LimitNOFILE" && Number(v) >= 262144), name);
      assert.ok(entries.some(([k, v]) => k === "NoNewPrivileges" && v === "true"), name);
      for (const [k, v] of entries) {
        if (!k.startsWith("Exec")) continue;
        const argv = expand(v.replace(/^[+-]/, "")).split(/\s+/);
        if (argv[0] !== bin) continue;
        const [role, ...rest] = argv.slice(1);
        const parsed = role === "discovery"
          ? parseDiscoveryFlags(rest)
          : role === "control-plane"
          ? parseControlPlaneFlags(rest)
          : role === "ratelimit"
          ? parseRatelimitFlags(rest)
          : role === "hot-restarter"
          ? (rest.length === 1 ? {} : 1)
          : parseCliFlags([role, ...rest]).kind === "run"
          ? {}
          : 1;
        assert.notEqual(typeof parsed, "number", `${name}: ${k}=${v}`);
      }
    }
    // the proxy unit: reload validates first, then signals the restarter
    const proxy = unitEntries(Deno.readTextFileSync(`${UNITS}/nuncio.service`));
    assert.deepEqual(proxy.filter(([k]) => k === "ExecReload").map(([, v]) => v.split(" ")[1]), [
      "--mode",
      "-HUP",
    ]);
    // the start script: RESTART_EPOCH passed on, the socket in the unit's runtime directory
    const start = Deno.readTextFileSync(`${UNITS}/start-nuncio.sh`);
    assert.match(start, /--restart-epoch "\$\{RESTART_EPOCH:\?/);
    assert.match(start, /--socket-path "\$\{RUNTIME_DIRECTORY/);
    const sh = await run("sh", ["-n", `${UNITS}/start-nuncio.sh`]);
    assert.equal(sh.code, 0, sh.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
