import assert from "node:assert/strict";
import { compileLogFormat, DEFAULT_LOG_FORMAT, escapeCStyle, type LogEvent } from "./log_format.ts";

// 2024-03-05 07:08:09.012 in local time, whatever the machine's zone
const time = new Date(2024, 2, 5, 7, 8, 9, 12).getTime();
const ev: LogEvent = { level: "warning", logger: "upstream", thread: "worker_1", message: 'a\nb "q"', time };

Deno.test("log format: Envoy's default without source location", () => {
  assert.equal(DEFAULT_LOG_FORMAT, "[%Y-%m-%d %T.%e][%t][%l][%n] %v");
  assert.equal(
    compileLogFormat(DEFAULT_LOG_FORMAT)(ev),
    '[2024-03-05 07:08:09.012][worker_1][warning][upstream] a\nb "q"',
  );
});

Deno.test("log format: flags", () => {
  const f = compileLogFormat("%L|%a %b %d|%D|%H:%M:%S %p|%I|%R|%C|%f|%%|%g%#%@|%_|%j");
  assert.equal(f(ev), 'W|Tue Mar 05|03/05/24|07:08:09 AM|07|07:08|24|012000|%||a\\nb "q"|a\\nb \\"q\\"');
  assert.equal(
    compileLogFormat("%A %B %c|%E|%P")(ev),
    `Tuesday March Tue Mar 05 07:08:09 2024|${Math.floor(time / 1000)}|${Deno.pid}`,
  );
});

Deno.test("log format: unknown flags print as written, a trailing % prints nothing (spdlog)", () => {
  assert.equal(compileLogFormat("%Q|%5Q|%y")(ev), "%Q|%Q|%y");
  assert.equal(compileLogFormat("50%")(ev), "50");
  assert.equal(compileLogFormat("a%-8")(ev), "a");
  assert.equal(compileLogFormat("%5%|%%d")(ev), "%|%d");
});

Deno.test("log format: padding, alignment and truncation", () => {
  assert.equal(compileLogFormat("[%8l]")(ev), "[ warning]");
  assert.equal(compileLogFormat("[%10l]")(ev), "[   warning]");
  assert.equal(compileLogFormat("[%-10l]")(ev), "[warning   ]");
  assert.equal(compileLogFormat("[%=10l]")(ev), "[ warning  ]");
  assert.equal(compileLogFormat("[%=11l]")(ev), "[  warning  ]");
  assert.equal(compileLogFormat("[%3!l][%-3!l][%=3!l][%3l]")(ev), "[war][war][war][warning]");
  assert.equal(compileLogFormat("[%10!l]")(ev), "[   warning]");
  assert.equal(compileLogFormat("[%-v]")(ev), '[a\nb "q"]'); // no width: no padding
  assert.equal(compileLogFormat("[%0l][%99l]")(ev), `[warning][${" ".repeat(57)}warning]`); // width <= 64
  // padding applies to date flags and source-location flags (empty), not to the colour range or Envoy's flags
  assert.equal(compileLogFormat("[%4d][%-3s][%2^][%4j]")(ev), '[  05][   ][][a\\nb \\"q\\"]');
  // "%<n>!x" with an unknown x is spdlog's padded function-name flag followed by x
  assert.equal(compileLogFormat("[%5!]")(ev), "[     ]");
  assert.equal(compileLogFormat("%-3!Q")(ev), "   Q");
  // --log-format-escaped still applies under padding
  assert.equal(compileLogFormat("[%12v]", true)(ev), '[  a\\nb \\"q\\"]');
});

Deno.test("log format: colour range, source location and Envoy's %* / %+", () => {
  assert.equal(compileLogFormat("[%^%l%$] %@%s%g%#%!|%*|%+")(ev), '[warning] ||a\\nb \\"q\\"');
});

Deno.test("log format: elapsed time since the previous line", () => {
  const f = compileLogFormat("%o|%i|%u|%O");
  const now = Date.now();
  assert.equal(f({ ...ev, time: now - 60_000 }), "0|0|0|0"); // earlier than compile time: clamped to 0
  assert.equal(f({ ...ev, time: now + 1500 }), "61500|61500000|61500000000|61");
  assert.equal(f({ ...ev, time: now + 1500 }), "0|0|0|0");
  assert.equal(f({ ...ev, time: now + 1502 }), "2|2000|2000000|0");
  assert.equal(f({ ...ev, time: now + 1000 }), "0|0|0|0"); // backwards: clamped to 0
  // each compiled pattern keeps its own previous time
  const g = compileLogFormat("[%4o]");
  assert.equal(g({ ...ev, time: Date.now() - 10 }), "[   0]");
});

Deno.test("log format: json keyword gives one JSON object per line", () => {
  const line = compileLogFormat("json")(ev);
  const doc = JSON.parse(line);
  assert.equal(doc.level, "warning");
  assert.equal(doc.logger, "upstream");
  assert.equal(doc.thread, "worker_1");
  assert.equal(doc.message, 'a\nb "q"');
  assert.match(doc.time, /^2024-03-05T07:08:09\.012[+-]\d\d:\d\d$/);
});

Deno.test("log format: --log-format-escaped escapes the message", () => {
  assert.equal(compileLogFormat("%v", true)(ev), 'a\\nb \\"q\\"');
  assert.equal(escapeCStyle("x\ty\u0001\\"), "x\\ty\\x01\\\\");
});
