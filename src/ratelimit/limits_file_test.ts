import assert from "node:assert/strict";
import { formatConfigError } from "../config/errors.ts";
import { StatsStore } from "../stats/store.ts";
import { LimitsConfig } from "./limits.ts";
import { loadLimitsPath, parseLimitsText } from "./limits_file.ts";

function errors(text: string): string[] {
  const r = parseLimitsText(text, "l.yaml");
  assert.equal(r.ok, false);
  return r.ok ? [] : r.errors.map(formatConfigError);
}

Deno.test("limits file", async (t) => {
  await t.step("the reference format parses and dumps", () => {
    const r = parseLimitsText(
      `domain: mongo_cps
descriptors:
  - key: database
    value: users
    rate_limit:
      unit: SECOND
      requests_per_unit: 500
  - key: database
    value: default
    shadow_mode: true
    rate_limit:
      name: def
      unit: Minute
      requests_per_unit: 50
  - key: empty
    descriptors:
`,
      "l.yaml",
    );
    assert.ok(r.ok);
    const c = new LimitsConfig([r], { stats: new StatsStore() });
    assert.deepEqual(c.toJSON(), {
      files: ["l.yaml"],
      limits: [
        { key: "mongo_cps.database_users", requests_per_unit: 500, unit: "SECOND", shadow_mode: false },
        {
          key: "mongo_cps.database_default",
          name: "def",
          requests_per_unit: 50,
          unit: "MINUTE",
          shadow_mode: true,
        },
      ],
    });
  });

  await t.step("errors carry file:line:col and path", () => {
    assert.deepEqual(
      errors("domain: d\ndescriptors:\n  - key: a\n    rate_limit: { unit: secnd, requests_per_unit: 1 }\n"),
      ['l.yaml:4:25: descriptors[0].rate_limit.unit: Invalid rate limit unit "secnd"'],
    );
    assert.deepEqual(errors("domain: d\ndescriptors:\n  - key: a\n    colour: red\n"), [
      "l.yaml:4:5: descriptors[0].colour: Unknown field",
    ]);
    assert.deepEqual(errors("domain: d\ndescriptors:\n  - key: a\n    quota_mode: true\n"), [
      "l.yaml:4:17: descriptors[0].quota_mode: Field not supported by nuncio",
    ]);
    assert.match(
      errors("domain: d\ndescriptors:\n  - key: a\n  - key: a\n")[0],
      /l.yaml:4:5: descriptors\[1\]: Duplicate descriptor composite key "a"/,
    );
    assert.match(
      errors("domain: d\ndescriptors:\n  - key: a\n    rate_limit: { unlimited: true, unit: second }\n")[0],
      /when unlimited/,
    );
    assert.match(
      errors(
        "domain: d\ndescriptors:\n  - key: a\n    rate_limit: { name: x, unit: hour, requests_per_unit: 1, replaces: [{ name: x }] }\n",
      )[0],
      /replaces\[0\]\.name: Replaces should not name its own descriptor/,
    );
    assert.match(errors("domain: ''\n")[0], /empty domain/);
    assert.match(errors("domain: d\ndescriptors: [\n")[0], /^l.yaml:\d+:\d+: YAML syntax error/);
    assert.match(errors("descriptors: []\n")[0], /domain/);
    assert.match(
      errors(
        "domain: d\ndescriptors:\n  - key: a\n    rate_limit: { unit: second, requests_per_unit: -1 }\n",
      )[0],
      /requests_per_unit/,
    );
  });

  await t.step("a directory holds one domain per file; a duplicate domain fails the set", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/a.yaml`,
        "domain: a\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 1}\n",
      );
      await Deno.writeTextFile(`${dir}/b.yml`, "domain: b\n");
      await Deno.writeTextFile(`${dir}/notes.txt`, "ignored");
      const ok = await loadLimitsPath(dir);
      assert.ok(ok.ok);
      assert.deepEqual(ok.files.map((f) => f.file.domain), ["a", "b"]);
      await Deno.writeTextFile(`${dir}/c.yaml`, "domain: a\n");
      const bad = await loadLimitsPath(dir);
      assert.ok(!bad.ok);
      assert.match(
        formatConfigError(bad.errors[0]),
        /c.yaml: domain: Duplicate domain "a" \(also in .*a.yaml\)/,
      );
      const missing = await loadLimitsPath(`${dir}/nope.yaml`);
      assert.ok(!missing.ok);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
