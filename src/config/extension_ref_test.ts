import assert from "node:assert/strict";
import { FAKE_OBSERVER, FAKE_TERMINAL } from "./test_extensions.ts";
import { typedExtension } from "./extension_ref.ts";

const schema = typedExtension("network_filter");

function issues(input: unknown): string[] {
  const r = schema.safeParse(input);
  assert.equal(r.success, false, "expected a rejection");
  return r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

Deno.test("typed extension references", async (t) => {
  const terminal = { stat_prefix: "s", cluster: "c" };

  await t.step("an unknown @type is an error at @type even under a known name", () => {
    assert.deepEqual(
      issues({
        name: FAKE_TERMINAL,
        typed_config: { "@type": "type.googleapis.com/test.TerminalFak", ...terminal },
      }),
      ['typed_config.@type: Unknown or unsupported network filter type "type.googleapis.com/test.TerminalFak"'],
    );
  });

  await t.step("a known @type selects the extension, whatever the name says", () => {
    const r = schema.parse({
      name: FAKE_OBSERVER,
      typed_config: { "@type": "type.googleapis.com/test.TerminalFake", ...terminal },
    });
    assert.equal(r.ext.name, FAKE_TERMINAL);
    assert.equal(r.name, FAKE_OBSERVER);
  });

  await t.step("only the message name after the last / of @type counts, as in Envoy", () => {
    const r = schema.parse({ typed_config: { "@type": "example.com/test.TerminalFake", ...terminal } });
    assert.equal(r.ext.name, FAKE_TERMINAL);
    assert.deepEqual(
      issues({ typed_config: { "@type": "example.com/test.Nope", ...terminal } }),
      ['typed_config.@type: Unknown or unsupported network filter type "example.com/test.Nope"'],
    );
  });

  await t.step("@type alone selects the extension and names the reference", () => {
    const r = schema.parse({
      typed_config: { "@type": "type.googleapis.com/test.TerminalFake", ...terminal },
    });
    assert.equal(r.ext.name, FAKE_TERMINAL);
    assert.equal(r.name, FAKE_TERMINAL);
    assert.deepEqual(issues({}), ["name: Missing required field"]);
    assert.deepEqual(issues({ name: "nope" }), ['name: Unknown or unsupported network filter "nope"']);
  });

  await t.step("a TypedStruct is read as the message its type_url names", () => {
    for (const wrapper of ["udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"]) {
      const r = schema.parse({
        name: "x",
        typed_config: {
          "@type": `type.googleapis.com/${wrapper}`,
          type_url: "type.googleapis.com/test.TerminalFake",
          value: { ...terminal, idle_timeout: null },
        },
      });
      assert.equal(r.ext.name, FAKE_TERMINAL);
      assert.deepEqual(r.config, { ...terminal, mode: "FAST" });
    }
    const ts = "type.googleapis.com/xds.type.v3.TypedStruct";
    assert.deepEqual(
      issues({
        typed_config: { "@type": ts, type_url: "type.googleapis.com/test.TerminalFake", value: { x: 1 } },
      }),
      [
        "typed_config.value.stat_prefix: Invalid input: expected string, received undefined",
        "typed_config.value.cluster: Invalid input: expected string, received undefined",
        'typed_config.value: Unrecognized key: "x"',
      ],
    );
    assert.deepEqual(issues({ typed_config: { "@type": ts, type_url: "type.googleapis.com/test.Nope" } }), [
      'typed_config.type_url: Unknown or unsupported network filter type "type.googleapis.com/test.Nope"',
    ]);
    assert.deepEqual(issues({ typed_config: { "@type": ts } }), [
      "typed_config.type_url: Missing required field",
    ]);
  });
});
