/**
 * With the permissions `deno task start` grants (not -A), nuncio gives its start-up code pages back a second
 * after serving (common/code_pages.ts): its /proc reads go through libc, since Deno opens /proc only with
 * --allow-all.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { okListener, refusedPort, spawnNuncio, waitForPort } from "./helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** The `deno run` permission flags of deno.json's `nuncio` task (what `deno task start` runs with). */
function taskPermissions(): string[] {
  const tasks = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks as Record<string, string>;
  return tasks.nuncio.split(/\s+/).filter((a) => a.startsWith("--allow-"));
}

Deno.test({
  name: "start-up pages are released under the start task's permissions",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const port = refusedPort();
    const path = await Deno.makeTempFile({ prefix: "nuncio_pages_", suffix: ".yaml" });
    await Deno.writeTextFile(
      path,
      stringify({ static_resources: { listeners: [okListener("http", port)] } }),
    );
    const perms = taskPermissions();
    assert.ok(perms.includes("--allow-ffi") && !perms.includes("--allow-all"), perms.join(" "));
    const child = spawnNuncio(["-c", path, "--concurrency", "1", "--log-level", "debug"], perms);
    try {
      await waitForPort(port);
      // released one second after serving
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      child.proc.kill("SIGTERM");
      await child.proc.status;
      await Deno.remove(path);
    }
    const err = await child.stderr;
    const m = /start-up code pages released \((\d+) MiB advised\)/.exec(err);
    assert.ok(m !== null, err);
    assert.ok(Number(m[1]) > 0, m[0]);
  },
});
