import assert from "node:assert/strict";
import {
  applyLogSettings,
  componentLogLevels,
  getLogLevel,
  Logger,
  logSettings,
  parseComponentLogLevels,
  reopenLogFile,
  setComponentLogLevel,
  setComponentLogLevels,
  setLogFormat,
  setLogLevel,
  setLogPath,
} from "./log.ts";

Deno.test("log: component levels, enabled() and the boolean getters", () => {
  const saved = logSettings();
  try {
    setLogLevel("info");
    const router = new Logger("router");
    const upstream = new Logger("upstream");
    assert.equal(router.debugEnabled, false);
    assert.equal(router.enabled("info"), true);
    setComponentLogLevel("router", "debug");
    assert.equal(router.debugEnabled, true);
    assert.equal(router.traceEnabled, false);
    assert.equal(router.enabled("debug"), true);
    assert.equal(upstream.enabled("debug"), false);
    assert.equal(componentLogLevels().router, "debug");
    assert.equal(componentLogLevels().http, "info");
    // --log-level / ?level= sets every component
    setLogLevel("warning");
    assert.equal(getLogLevel(), "warn");
    assert.equal(router.debugEnabled, false);
    assert.equal(router.enabled("info"), false);
    assert.throws(() => setComponentLogLevel("nonesuch", "debug"), /Invalid component specified "nonesuch"/);
    assert.throws(() => setComponentLogLevel("router", "loud"), /Unknown log level "loud"/);
  } finally {
    applyLogSettings(saved);
  }
});

Deno.test("log: setComponentLogLevels is all or nothing (/logging?paths= with one bad entry changes nothing)", () => {
  const saved = logSettings();
  try {
    setLogLevel("info");
    assert.throws(
      () => setComponentLogLevels({ router: "debug", upstream: "bogus" }),
      /Unknown log level "bogus"/,
    );
    assert.throws(() => setComponentLogLevels({ router: "debug", nonesuch: "info" }), /Invalid component/);
    assert.equal(componentLogLevels().router, "info");
    setComponentLogLevels({ router: "debug", upstream: "warn" });
    assert.equal(componentLogLevels().router, "debug");
    assert.equal(componentLogLevels().upstream, "warn");
  } finally {
    applyLogSettings(saved);
  }
});

Deno.test("log: parseComponentLogLevels", () => {
  assert.deepEqual(parseComponentLogLevels("upstream:debug,connection:trace"), [
    ["upstream", "debug"],
    ["connection", "trace"],
  ]);
  assert.throws(() => parseComponentLogLevels("upstream"), /upstream:debug/);
  assert.throws(() => parseComponentLogLevels("bogus:debug"), /Invalid component/);
  assert.throws(() => parseComponentLogLevels("upstream:loud"), /Unknown log level/);
});

Deno.test("log: --log-path, format and reopen after rotation", async () => {
  const saved = logSettings();
  const dir = await Deno.makeTempDir();
  try {
    setLogLevel("info");
    setLogFormat("%l %n %v");
    setLogPath(`${dir}/nuncio.log`);
    const log = new Logger("admin", "[x] ");
    log.info("one");
    log.debug("hidden");
    await Deno.rename(`${dir}/nuncio.log`, `${dir}/nuncio.log.1`);
    log.info("two"); // still the moved file until reopened
    reopenLogFile();
    log.warn("three");
    assert.equal(await Deno.readTextFile(`${dir}/nuncio.log.1`), "info admin [x] one\ninfo admin [x] two\n");
    assert.equal(await Deno.readTextFile(`${dir}/nuncio.log`), "warning admin [x] three\n");
    const s = logSettings();
    assert.equal(s.path, `${dir}/nuncio.log`);
    assert.equal(s.format, "%l %n %v");
  } finally {
    applyLogSettings(saved);
    await Deno.remove(dir, { recursive: true });
  }
});
