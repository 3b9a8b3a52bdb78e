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
  assert.throws(() => compileLogFormat("%Q"), /Unknown log format flag "%Q"/);
  assert.throws(() => compileLogFormat("50%"), /Unknown log format flag "%"/);
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
