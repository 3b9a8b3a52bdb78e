/**
 * The single binary (`compile.sh`, `deno compile`) embeds the module graph of main.ts plus what it names with
 * --include. The compiler's runtime cannot be downloaded on these machines, so the graph is proved here
 * instead: every dynamic import in the sources is a string literal (the compiler cannot see any other), every
 * lazily loaded module (roles, filters loaded on first use, node:tls, xDS transports) is in the graph `deno
 * info` reports for main.ts, and the worker entry compile.sh includes has its own graph.
 */
import assert from "node:assert/strict";
import { run } from "./helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function sources(dir: string, out: string[] = []): string[] {
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) sources(p, out);
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts") && !e.name.startsWith("test_")) {
      out.push(p);
    }
  }
  return out;
}

async function graph(entry: string): Promise<Set<string>> {
  const r = await run(Deno.execPath(), ["info", "--json", entry]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { modules: { specifier: string; error?: string }[] };
  const broken = info.modules.filter((m) => m.error);
  assert.deepEqual(broken, [], `${entry}: modules that do not resolve`);
  return new Set(info.modules.map((m) => m.specifier));
}

Deno.test("compile graph: every lazily loaded module is in main.ts's graph; the worker entry resolves", async () => {
  // src/client is the thin client, a package for services: not part of the binary
  const files = [
    `${ROOT}main.ts`,
    ...sources(`${ROOT}src`).filter((f) => !f.startsWith(`${ROOT}src/client/`)),
  ];
  const lazy: string[] = [];
  for (const f of files) {
    const text = Deno.readTextFileSync(f);
    for (const m of text.matchAll(/\bimport\(\s*([^)]*)\)/g)) {
      const arg = m[1].trim();
      // type positions (typeof import("x")) are not loads
      const before = text.slice(Math.max(0, m.index! - 7), m.index);
      if (before.endsWith("typeof ")) continue;
      const literal = /^"([^"]+)"$/.exec(arg);
      assert.ok(
        literal,
        `${f.slice(ROOT.length)}: import(${arg}) is not a string literal the compiler can follow`,
      );
      const spec = literal[1];
      if (spec.startsWith(".")) lazy.push(new URL(spec, `file://${f}`).href);
    }
  }
  assert.ok(lazy.length >= 20, `only ${lazy.length} lazy imports found`);
  const main = await graph(`${ROOT}main.ts`);
  const missing = lazy.filter((u) => !main.has(u));
  assert.deepEqual(missing, [], "lazily loaded modules outside main.ts's graph");
  // the roles main.ts dispatches to
  for (const role of ["ratelimit", "discovery", "register", "control_plane", "configgen"]) {
    assert.ok(main.has(`file://${ROOT}src/${role}/cli.ts`), role);
  }
  assert.ok(main.has(`file://${ROOT}src/server/hot_restarter.ts`));
  // the worker is started by URL (new Worker), which the compiler does not follow: compile.sh includes it
  const worker = await graph(`${ROOT}src/server/worker.ts`);
  assert.ok(worker.size > 100);
  const compile = Deno.readTextFileSync(`${ROOT}compile.sh`);
  assert.match(compile, /--include src\/server\/worker\.ts/);
  // and both entries type-check, as `deno task check` does
  const check = await run(Deno.execPath(), ["check", `${ROOT}main.ts`, `${ROOT}src/server/worker.ts`]);
  assert.equal(check.code, 0, check.stderr);
  const workerUrls = [
    ...Deno.readTextFileSync(`${ROOT}src/server/server.ts`).matchAll(/new Worker\(new URL\("([^"]+)"/g),
  ];
  assert.deepEqual(workerUrls.map((m) => m[1]), ["./worker.ts"]);
});
