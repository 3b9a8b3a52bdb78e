import assert from "node:assert/strict";
import { commandLineOptions, parseCliFlags } from "./cli_flags.ts";

function flags(args: string[]) {
  const r = parseCliFlags(args, 4);
  if (r.kind !== "run") throw new Error(`Expected flags, got ${JSON.stringify(r)}`);
  return r.flags;
}

function usage(args: string[]): string {
  const r = parseCliFlags(args, 4);
  if (r.kind !== "usage") throw new Error(`Expected a usage error, got ${JSON.stringify(r)}`);
  return r.message;
}

Deno.test("cli flags: defaults and config sources", () => {
  const f = flags(["-c", "b.yaml"]);
  assert.equal(f.configPath, "b.yaml");
  assert.equal(f.concurrency, 4);
  assert.equal(f.mode, "serve");
  assert.equal(f.logLevel, "info");
  assert.equal(f.logFormat, "[%Y-%m-%d %T.%e][%t][%l][%n] %v");
  assert.equal(f.drainTimeS, 5);
  assert.equal(f.parentShutdownTimeS, 900);
  assert.equal(flags(["--config-path", "a.yaml"]).configPath, "a.yaml");
  assert.equal(flags(["--config=a.json"]).configPath, "a.json");
  assert.equal(flags(["--config-yaml", "node: {id: n}"]).configYaml, "node: {id: n}");
  assert.match(usage([]), /A config is required/);
  assert.match(usage(["-c"]), /-c needs a value/);
  assert.equal(parseCliFlags(["--help"]).kind, "help");
  assert.equal(parseCliFlags(["--version"]).kind, "version");
  assert.match(usage(["-c", "x", "--bogus"]), /Unknown argument "--bogus"/);
});

Deno.test("cli flags: Envoy's options", () => {
  const f = flags([
    "-c",
    "x.yaml",
    "--mode",
    "init_only",
    "-l",
    "warning",
    "--component-log-level",
    "upstream:debug,connection:trace",
    "--log-path",
    "/tmp/n.log",
    "--log-format",
    "json",
    "--log-format-escaped",
    "--service-cluster",
    "edge",
    "--service-node",
    "edge-1",
    "--service-zone",
    "us-east-1a",
    "--drain-time-s",
    "0.5",
    "--parent-shutdown-time-s=30",
    "--concurrency",
    "0",
  ]);
  assert.equal(f.mode, "init_only");
  assert.equal(f.logLevel, "warn");
  assert.equal(f.componentLogLevel, "upstream:debug,connection:trace");
  assert.equal(f.logPath, "/tmp/n.log");
  assert.equal(f.logFormat, "json");
  assert.equal(f.logFormatEscaped, true);
  assert.equal(f.serviceCluster, "edge");
  assert.equal(f.serviceNode, "edge-1");
  assert.equal(f.serviceZone, "us-east-1a");
  assert.equal(f.drainTimeS, 0.5);
  assert.equal(f.parentShutdownTimeS, 30);
  assert.equal(f.concurrency, 1); // Envoy: 0 still runs one worker
  const o = commandLineOptions(f, ["-c", "x.yaml"]);
  assert.equal(o.mode, "InitOnly");
  assert.equal(o.service_node, "edge-1");
  assert.equal(o.drain_time, "0.5s");
  assert.deepEqual(o.args, ["nuncio", "-c", "x.yaml"]);
});

Deno.test("cli flags: bad values are usage errors", () => {
  assert.match(usage(["-c", "x", "--mode", "fast"]), /--mode must be serve, validate or init_only/);
  assert.match(usage(["-c", "x", "-l", "loud"]), /Unknown log level "loud"/);
  assert.match(
    usage(["-c", "x", "--component-log-level", "nope:debug"]),
    /Invalid component specified "nope"/,
  );
  assert.match(usage(["-c", "x", "--component-log-level", "upstream"]), /upstream:debug/);
  assert.match(usage(["-c", "x", "--drain-time-s", "soon"]), /--drain-time-s must be a number of seconds/);
  assert.match(usage(["-c", "x", "--concurrency", "300"]), /--concurrency must be an integer/);
});

Deno.test("cli flags: hot restart", () => {
  // not armed without a hot restart flag: nuncio runs alone
  const alone = flags(["-c", "x"]);
  assert.equal(alone.restartEpoch, undefined);
  assert.equal(alone.drainStrategy, "gradual");
  assert.equal(alone.socketPath, "/tmp/nuncio_domain_socket");
  assert.equal(commandLineOptions(alone, []).disable_hot_restart, true);
  const f = flags([
    "-c",
    "x",
    "--restart-epoch",
    "3",
    "--base-id",
    "7",
    "--socket-path",
    "/run/nuncio/hr",
    "--socket-mode",
    "660",
    "--drain-strategy",
    "immediate",
  ]);
  assert.equal(f.restartEpoch, 3);
  assert.equal(f.baseId, 7);
  assert.equal(f.socketPath, "/run/nuncio/hr");
  assert.equal(f.socketMode, 0o660);
  assert.equal(f.drainStrategy, "immediate");
  const o = commandLineOptions(f, []);
  assert.equal(o.restart_epoch, 3);
  assert.equal(o.drain_strategy, "Immediate");
  assert.equal(o.disable_hot_restart, false);
  // --base-id alone arms epoch 0
  assert.equal(flags(["-c", "x", "--base-id", "2"]).restartEpoch, 0);
  assert.equal(flags(["-c", "x", "--use-dynamic-base-id"]).restartEpoch, 0);
  assert.equal(flags(["-c", "x", "--base-id", "2", "--disable-hot-restart"]).restartEpoch, undefined);
  assert.equal(parseCliFlags(["--hot-restart-version"]).kind, "hot-restart-version");
  assert.match(usage(["-c", "x", "--restart-epoch", "-1"]), /--restart-epoch must be an integer/);
  assert.match(
    usage(["-c", "x", "--drain-strategy", "slow"]),
    /--drain-strategy must be gradual or immediate/,
  );
  assert.match(usage(["-c", "x", "--socket-mode", "rw"]), /--socket-mode must be an octal mode/);
  assert.match(usage(["-c", "x", "--restart-epoch", "1", "--disable-hot-restart"]), /must be 0/);
  assert.match(usage(["-c", "x", "--restart-epoch", "1", "--use-dynamic-base-id"]), /for epoch 0/);
});
