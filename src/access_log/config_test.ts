import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { ResponseFlag } from "../common/response_flags.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { fileAccessLog } from "../extensions/access_loggers/file/mod.ts";
import { stderrAccessLog, stdoutAccessLog } from "../extensions/access_loggers/stdout/mod.ts";
import { registry } from "../registry/registry.ts";
import { accessLogEntrySchema, anyUsesTlsFacts, createAccessLogs, logAll } from "./config.ts";
import { accessLogFilterSchema, compileFilter } from "./filter.ts";
import { testContext } from "./test_util.ts";
import { HeaderMap } from "../http/headers.ts";
import { setRuntime } from "../runtime/current.ts";
import { createEntry, EMPTY_SNAPSHOT, RuntimeSnapshot } from "../runtime/snapshot.ts";

for (const ext of [fileAccessLog, stdoutAccessLog, stderrAccessLog]) {
  if (!registry.find("access_logger", ext.name, undefined)) registry.register(ext);
}

function info(code: number, durationMs: number, flags = 0): StreamInfo {
  const i = new StreamInfo();
  i.responseCode = code;
  i.startMono = 100;
  i.endMono = 100 + durationMs;
  i.responseFlags = flags;
  return i;
}

function filterOf(cfg: unknown) {
  return compileFilter(accessLogFilterSchema.parse(cfg), new ManualClock());
}

Deno.test("access log filters", async (t) => {
  const cmp = (op: string, v: number) => ({
    comparison: { op, value: { default_value: v, runtime_key: "k" } },
  });
  await t.step("status_code_filter", () => {
    const ge = filterOf({ status_code_filter: cmp("GE", 500) });
    assert.equal(ge.evaluate(info(503, 1)), true);
    assert.equal(ge.evaluate(info(404, 1)), false);
    const eq = filterOf({
      status_code_filter: { comparison: { value: { default_value: 200, runtime_key: "k" } } },
    });
    assert.equal(eq.evaluate(info(200, 1)), true);
    assert.equal(eq.evaluate(info(201, 1)), false);
    assert.equal(filterOf({ status_code_filter: cmp("LE", 299) }).evaluate(info(300, 1)), false);
    assert.equal(filterOf({ status_code_filter: cmp("NE", 200) }).evaluate(info(300, 1)), true);
  });
  await t.step("duration_filter", () => {
    const f = filterOf({ duration_filter: cmp("GE", 1000) });
    assert.equal(f.evaluate(info(200, 1500)), true);
    assert.equal(f.evaluate(info(200, 999.9)), false);
  });
  await t.step("response_flag_filter", () => {
    const any = filterOf({ response_flag_filter: {} });
    assert.equal(any.evaluate(info(200, 1)), false);
    assert.equal(any.evaluate(info(503, 1, ResponseFlag.UpstreamOverflow)), true);
    const some = filterOf({ response_flag_filter: { flags: ["UH", "NR"] } });
    assert.equal(some.evaluate(info(503, 1, ResponseFlag.UpstreamOverflow)), false);
    assert.equal(some.evaluate(info(404, 1, ResponseFlag.NoRouteFound)), true);
    const bad = accessLogFilterSchema.safeParse({ response_flag_filter: { flags: ["XX"] } });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error!.issues[0].path, ["response_flag_filter", "flags", 0]);
  });
  await t.step("and_filter / or_filter", () => {
    const and = filterOf({
      and_filter: { filters: [{ status_code_filter: cmp("GE", 500) }, { duration_filter: cmp("GE", 10) }] },
    });
    assert.equal(and.evaluate(info(500, 20)), true);
    assert.equal(and.evaluate(info(500, 5)), false);
    const or = filterOf({
      or_filter: { filters: [{ status_code_filter: cmp("GE", 500) }, { duration_filter: cmp("GE", 10) }] },
    });
    assert.equal(or.evaluate(info(200, 20)), true);
    assert.equal(or.evaluate(info(200, 5)), false);
  });
  await t.step("unsupported and malformed filters", () => {
    const r = accessLogFilterSchema.safeParse({ not_health_check_filter: {} });
    assert.equal(r.success, false);
    assert.match(r.error!.issues[0].message, /not supported/);
    assert.deepEqual(r.error!.issues[0].path, ["not_health_check_filter"]);
    assert.equal(accessLogFilterSchema.safeParse({}).success, false);
    assert.equal(accessLogFilterSchema.safeParse({ bogus: {} }).success, false);
  });
});

Deno.test("accessLogEntrySchema and createAccessLogs", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("file logger with filter writes only matching entries", async () => {
      const path = `${dir}/access.log`;
      const entry = accessLogEntrySchema.parse({
        name: "envoy.access_loggers.file",
        filter: {
          status_code_filter: { comparison: { op: "GE", value: { default_value: 500, runtime_key: "x" } } },
        },
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
          path,
          log_format: { text_format_source: { inline_string: "%RESPONSE_CODE% %DURATION%\n" } },
        },
      });
      const ctx = testContext();
      const logs = createAccessLogs([entry], ctx);
      logAll(logs, info(200, 3));
      logAll(logs, info(502, 7));
      logAll(logs, info(503, 9));
      await Promise.all(logs.map((l) => l.close()));
      assert.equal(await Deno.readTextFile(path), "502 7\n503 9\n");
      assert.equal(ctx.stats.counter("filesystem.write_buffered").value, 2);
    });
    await t.step("file logger appends, flushes and reopens", async () => {
      const path = `${dir}/append.log`;
      await Deno.writeTextFile(path, "existing\n");
      const entry = accessLogEntrySchema.parse({
        name: "envoy.access_loggers.file",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
          path,
          log_format: { json_format: { code: "%RESPONSE_CODE%", host: "%UPSTREAM_HOST%" } },
        },
      });
      const [logger] = createAccessLogs([entry], testContext());
      logger.log(info(200, 1));
      await (logger as unknown as { flush(): Promise<void> }).flush();
      assert.equal(await Deno.readTextFile(path), 'existing\n{"code":200,"host":null}\n');
      // Rotate: move the file away, reopen, the next line lands in a new file at `path`.
      await Deno.rename(path, `${path}.1`);
      logger.reopen!();
      logger.log(info(404, 1));
      await logger.close();
      assert.equal(await Deno.readTextFile(path), '{"code":404,"host":null}\n');
      assert.equal(await Deno.readTextFile(`${path}.1`), 'existing\n{"code":200,"host":null}\n');
    });
    await t.step("usesTlsFacts passes through filtered loggers; anyUsesTlsFacts over a list", async () => {
      const entry = (format: string, filtered: boolean) =>
        accessLogEntrySchema.parse({
          name: "envoy.access_loggers.stdout",
          ...(filtered ? { filter: { response_flag_filter: {} } } : {}),
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            log_format: { text_format: format },
          },
        });
      const logs = createAccessLogs([
        entry("%RESPONSE_CODE%\n", false),
        entry("%REQUESTED_SERVER_NAME%\n", true),
        entry("%DOWNSTREAM_TLS_CIPHER%\n", false),
      ], testContext());
      try {
        assert.deepEqual(logs.map((l) => l.usesTlsFacts), [false, true, true]);
        assert.equal(anyUsesTlsFacts(logs), true);
        assert.equal(anyUsesTlsFacts(logs.slice(0, 1)), false);
        assert.equal(anyUsesTlsFacts([]), false);
        assert.equal(
          anyUsesTlsFacts([{ log() {}, close: () => Promise.resolve() }]),
          false,
          "absent is false",
        );
      } finally {
        await Promise.all(logs.map((l) => l.close()));
      }
    });
    await t.step("deprecated format field and the default format", async () => {
      const path = `${dir}/deprecated.log`;
      const entry = accessLogEntrySchema.parse({
        name: "envoy.access_loggers.file",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
          path,
          format: "%PROTOCOL%\n",
        },
      });
      const i = info(200, 1);
      i.protocol = "HTTP/2";
      const [a] = createAccessLogs([entry], testContext());
      a.log(i);
      await a.close();
      assert.equal(await Deno.readTextFile(path), "HTTP/2\n");
      const dflt = accessLogEntrySchema.parse({
        name: "envoy.access_loggers.file",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
          path: `${dir}/default.log`,
        },
      });
      const [b] = createAccessLogs([dflt], testContext());
      b.log(i);
      await b.close();
      assert.match(
        await Deno.readTextFile(`${dir}/default.log`),
        /^\[1970-01-01T00:00:00\.000Z\] "- - HTTP\/2" 200 - 0 0 1 -/,
      );
    });
    await t.step("config errors keep their paths", () => {
      const bad = accessLogEntrySchema.safeParse({
        name: "envoy.access_loggers.stdout",
        filter: { extension_filter: { name: "a" } },
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
          log_format: { text_format: "%BOGUS%" },
        },
      });
      assert.equal(bad.success, false);
      const issues = bad.error!.issues.map((i) => [i.path.join("."), i.message]);
      assert.deepEqual(issues[0], ["filter.extension_filter", "Filter not supported by nuncio"]);
      assert.equal(issues[1][0], "typed_config.log_format.text_format");
      assert.match(issues[1][1], /unknown command operator %BOGUS%/);
      const fmt = accessLogEntrySchema.safeParse({
        name: "envoy.access_loggers.stdout",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
          log_format: { text_format: "x", formatters: [{ name: "f" }] },
        },
      });
      assert.deepEqual(fmt.error!.issues[0].path, ["typed_config", "log_format", "formatters"]);
      const both = accessLogEntrySchema.safeParse({
        name: "envoy.access_loggers.file",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
          path: "/tmp/x",
          format: "a",
          json_format: { a: "b" },
        },
      });
      assert.equal(both.success, false);
      const unknown = accessLogEntrySchema.safeParse({ name: "envoy.access_loggers.nope" });
      assert.match(unknown.error!.issues[0].message, /Unknown or unsupported access logger/);
    });
    await t.step("an unopenable file is an error at create time", () => {
      const entry = accessLogEntrySchema.parse({
        name: "envoy.access_loggers.file",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
          path: `${dir}/missing-dir/x.log`,
        },
      });
      assert.throws(() => createAccessLogs([entry], testContext()), /Cannot open access log file/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stdout and stderr loggers write to the process streams", async () => {
  const script = `
    import { stdoutAccessLog, stderrAccessLog } from "./src/extensions/access_loggers/stdout/mod.ts";
    import { StreamInfo } from "./src/common/stream_info.ts";
    import { testContext } from "./src/access_log/test_util.ts";
    const out = stdoutAccessLog.create(stdoutAccessLog.schema.parse({ log_format: { text_format: "out %RESPONSE_CODE%\\n" } }), testContext());
    const err = stderrAccessLog.create(stderrAccessLog.schema.parse({ log_format: { json_format: { c: "%RESPONSE_CODE%" } } }), testContext());
    const i = new StreamInfo();
    i.responseCode = 201;
    out.log(i); out.log(i); err.log(i);
    await out.close(); await err.close();
  `;
  const root = new URL("../../", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  assert.equal(new TextDecoder().decode(r.stdout), "out 201\nout 201\n");
  assert.equal(new TextDecoder().decode(r.stderr), '{"c":201}\n');
});

/** Installs a runtime with `values` for the duration of `fn`. */
function withRuntime(values: Record<string, string>, fn: () => void): void {
  setRuntime(
    new RuntimeSnapshot([{
      name: "t",
      values: new Map(Object.entries(values).map(([k, v]) => [k, createEntry(v)])),
    }]),
  );
  try {
    fn();
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
  }
}

function withRequestId(id: string | undefined): StreamInfo {
  const i = info(200, 1);
  i.requestHeaders = new HeaderMap();
  if (id !== undefined) i.requestHeaders.add("x-request-id", id);
  return i;
}

Deno.test("access log filters read the runtime: comparison runtime_key, runtime_filter", async (t) => {
  await t.step("status_code_filter and duration_filter take the runtime's value of runtime_key", () => {
    const f = filterOf({
      status_code_filter: { comparison: { op: "GE", value: { default_value: 500, runtime_key: "min" } } },
    });
    assert.equal(f.evaluate(info(404, 1)), false);
    withRuntime({ min: "400" }, () => assert.equal(f.evaluate(info(404, 1)), true));
    const d = filterOf({
      duration_filter: { comparison: { op: "GE", value: { default_value: 1000, runtime_key: "slow" } } },
    });
    withRuntime({ slow: "5" }, () => assert.equal(d.evaluate(info(200, 6)), true));
  });
  await t.step("runtime_filter samples from the x-request-id: the same ids every time", () => {
    const f = filterOf({ runtime_filter: { runtime_key: "log.sample", percent_sampled: { numerator: 10 } } });
    // 0x00000009 % 100 = 9 < 10; 0x0000000a % 100 = 10
    assert.equal(f.evaluate(withRequestId("00000009-aaaa-4bbb-8ccc-dddddddddddd")), true);
    assert.equal(f.evaluate(withRequestId("0000000a-aaaa-4bbb-8ccc-dddddddddddd")), false);
    withRuntime({ "log.sample": "11" }, () => {
      assert.equal(f.evaluate(withRequestId("0000000a-aaaa-4bbb-8ccc-dddddddddddd")), true);
    });
    withRuntime({ "log.sample": "0" }, () => {
      assert.equal(f.evaluate(withRequestId("00000009-aaaa-4bbb-8ccc-dddddddddddd")), false);
    });
    // the denominator of percent_sampled is the bucket count
    const m = filterOf({
      runtime_filter: { runtime_key: "k", percent_sampled: { numerator: 5, denominator: "TEN_THOUSAND" } },
    });
    assert.equal(m.evaluate(withRequestId("00002714-x")), true, "10004 % 10000 = 4 < 5");
    assert.equal(m.evaluate(withRequestId("00002715-x")), false);
    // no usable id: random, so 0 % and 100 % are still exact
    const none = filterOf({ runtime_filter: { runtime_key: "k" } });
    assert.equal(none.evaluate(withRequestId(undefined)), false, "percent_sampled absent: 0 %");
    withRuntime({ k: "100" }, () => assert.equal(none.evaluate(withRequestId("not-hex!")), true));
  });
  await t.step("use_independent_randomness ignores the request id", () => {
    const f = filterOf({
      runtime_filter: {
        runtime_key: "k",
        percent_sampled: { numerator: 50 },
        use_independent_randomness: true,
      },
    });
    let hits = 0;
    for (let i = 0; i < 2000; i++) if (f.evaluate(withRequestId("00000000-same"))) hits++;
    assert.ok(hits > 800 && hits < 1200, `about half: ${hits}`);
  });
});
