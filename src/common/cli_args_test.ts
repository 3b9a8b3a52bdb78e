import assert from "node:assert/strict";
import { cliArgs } from "./cli_args.ts";

/** Every flag with its value when `takes` says it has one. */
function walk(args: string[], takes: (name: string) => boolean): [string, string | null][] {
  const out: [string, string | null][] = [];
  for (const f of cliArgs(args)) out.push([f.name, takes(f.name) ? f.value() : null]);
  return out;
}

Deno.test("cliArgs: --name=value, --name value, -x value and switches", () => {
  const takes = (n: string) => n !== "--help" && n !== "--shadow";
  assert.deepEqual(
    walk(
      ["-c", "a.yaml", "--port=81", "--help", "--log-level", "debug", "--shadow", "--x=", "--y=a=b"],
      takes,
    ),
    [["-c", "a.yaml"], ["--port", "81"], ["--help", null], ["--log-level", "debug"], ["--shadow", null], [
      "--x",
      "",
    ], ["--y", "a=b"]],
  );
});

Deno.test("cliArgs: a consumed value is not seen as a flag; `=` splits only --long flags", () => {
  assert.deepEqual(walk(["--config", "--help"], () => true), [["--config", "--help"]]);
  // a single-dash flag keeps its "=" (its value is the next argument)
  assert.deepEqual(walk(["-c=x", "y"], () => true), [["-c=x", "y"]]);
  const [f] = cliArgs(["--port=1"]);
  assert.equal(f.arg, "--port=1");
});

Deno.test("cliArgs: a missing value throws NAME needs a value", () => {
  assert.throws(() => walk(["--port"], () => true), { message: "--port needs a value" });
  assert.throws(() => walk(["-c"], () => true), { message: "-c needs a value" });
  assert.deepEqual(walk([], () => true), []);
});
