import assert from "node:assert/strict";
import { JsonBytes } from "./json_bytes.ts";

Deno.test("JsonBytes writes the same JSON as JSON.stringify, and grows", () => {
  const samples = [
    "",
    "plain /path?x=1",
    'q"uote',
    "back\\slash",
    "tab\tnew\nline",
    "\u0001",
    "é ü",
    "💡",
    "~\u007f",
  ];
  const w = new JsonBytes(4);
  w.raw("[");
  samples.forEach((s, i) => {
    if (i > 0) w.raw(",");
    w.str(s);
  });
  w.raw(",");
  w.num(1.5);
  w.raw("]");
  const text = new TextDecoder().decode(w.bytes());
  assert.equal(text, JSON.stringify([...samples, 1.5]));
  assert.deepEqual(JSON.parse(text), [...samples, 1.5]);
});
