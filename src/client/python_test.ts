import assert from "node:assert/strict";

const DIR = new URL("./python/", import.meta.url).pathname;

Deno.test("client: the Python module's unit tests pass under /usr/bin/python3 (3.11, stdlib only)", async () => {
  const out = await new Deno.Command("/usr/bin/python3", {
    // -B: no __pycache__ beside the sources; -s -E: no user site-packages, no PYTHON* variables (the standard library and the module beside it only)
    args: [
      "-B",
      "-s",
      "-E",
      "-W",
      "error",
      "-m",
      "unittest",
      "-v",
      "test_nuncio_client",
    ],
    cwd: DIR,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr) +
    new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text);
  assert.match(text, /Ran 8 tests/);
  assert.match(text, /\nOK/);
});

Deno.test("client: the Python module compiles for 3.11 and imports nothing outside the standard library", async () => {
  const script = `
import ast, sys
src = open("nuncio_client.py").read()
compile(src, "nuncio_client.py", "exec")
mods = set()
for node in ast.walk(ast.parse(src)):
    if isinstance(node, ast.Import):
        mods.update(a.name.split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
        mods.add(node.module.split(".")[0])
print(sys.version_info[:2], sorted(m for m in mods if m not in sys.stdlib_module_names))
`;
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["-B", "-I", "-c", script],
    cwd: DIR,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "(3, 11) []");
});
