import assert from "node:assert/strict";
import { checkJsonSyntax } from "./json_syntax.ts";

Deno.test("checkJsonSyntax", async (t) => {
  await t.step("accepts valid JSON", () => {
    for (
      const text of [
        "{}",
        "[]",
        '  {"a": [1, -2.5e+3, 0, true, false, null, "x\\"\\u00e9\\n"], "b": {}}\n',
        "\ufeff{}",
        '"just a string"',
        "0",
      ]
    ) {
      assert.equal(checkJsonSyntax(text), undefined, text);
      JSON.parse(text.replace(/^\ufeff/, "")); // agrees with the built-in parser
    }
  });

  await t.step("rejects what YAML would accept, at the right offset", () => {
    const cases: [string, number, RegExp][] = [
      ['{"a": }', 6, /^Expected a JSON value/],
      ['{"a": 1,}', 8, /^Expected a double-quoted key/],
      ["{a: 1}", 1, /^Expected a double-quoted key/],
      ["[1 2]", 3, /^Expected "," or "\]"/],
      ['{"a" 1}', 5, /^Expected ":"/],
      ["{} # comment", 3, /^Unexpected character "#" after the JSON value/],
      ["[01]", 2, /^Expected "," or "\]"/],
      ["[1.]", 3, /^Expected a digit/],
      ['["a\tb"]', 3, /^Control character in string/],
      ['["\\x"]', 2, /^Invalid escape/],
      ['["abc', 1, /^Unterminated string/],
      ["[tru]", 1, /^Expected a JSON value/],
      ["", 0, /^Expected a JSON value, found end of input/],
      ["{\n  'a': 1\n}", 4, /^Expected a double-quoted key/],
    ];
    for (const [text, offset, message] of cases) {
      const e = checkJsonSyntax(text);
      assert.ok(e, `accepted ${JSON.stringify(text)}`);
      assert.equal(e.offset, offset, JSON.stringify(text));
      assert.match(e.message, message);
      assert.throws(() => JSON.parse(text), SyntaxError);
    }
  });

  await t.step("deep nesting is an error, not a stack overflow", () => {
    const e = checkJsonSyntax("[".repeat(5000) + "]".repeat(5000));
    assert.match(e?.message ?? "", /too deep/);
  });
});
