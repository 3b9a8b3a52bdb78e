/** The flag loop shared by nuncio's command lines (`nuncio` and its roles). */
import { setLogLevel } from "./log.ts";

/** One command-line argument seen as a flag. */
export interface CliArg {
  /** The argument as written (for "Unknown argument" messages). */
  readonly arg: string;
  /** The flag: `--name` of `--name=value`, else the argument itself (`-c`, `--help`). */
  readonly name: string;
  /**
   * The flag's value: what follows `=` in `--name=value` (may be ""), else the next argument, which is then
   * consumed. Throws "NAME needs a value" when there is none.
   */
  readonly value: () => string;
}

/** Walks `args` flag by flag; a flag's `value()` takes its value from `=` or the next argument. */
export function* cliArgs(args: readonly string[]): Generator<CliArg, void, undefined> {
  let i = 0;
  while (i < args.length) {
    const arg = args[i];
    const eq = arg.indexOf("=");
    const inline = arg.startsWith("--") && eq > 0;
    const name = inline ? arg.slice(0, eq) : arg;
    yield {
      arg,
      name,
      value: () => {
        const v = inline ? arg.slice(eq + 1) : args[++i];
        if (v === undefined) throw new Error(`${name} needs a value`);
        return v;
      },
    };
    i++;
  }
}

/**
 * The flag loop of a standalone role (`nuncio ratelimit`, `discovery`, `register`, `control-plane`,
 * `configgen`): `-h`/`--help` prints `help` (exit 0); `-l`/`--log-level` sets the log level (`defaultLevel`
 * when absent); every other flag goes to `handle`, which returns false for a flag it does not know ("Unknown
 * argument") and throws an Error for a bad value; then `finish` may name what is missing. A problem prints
 * its message and the help to stderr (exit 1). Returns the exit code, or undefined to go on.
 */
export function parseRoleFlags(
  args: readonly string[],
  help: string,
  handle: (name: string, value: () => string) => boolean,
  finish: () => string | undefined = () => undefined,
  defaultLevel = "info",
): number | undefined {
  let level = defaultLevel;
  const usage = (msg: string) => {
    console.error(`${msg}\n\n${help}`);
    return 1;
  };
  for (const { arg, name, value } of cliArgs(args)) {
    try {
      if (name === "-h" || name === "--help") {
        console.log(help);
        return 0;
      }
      if (name === "-l" || name === "--log-level") level = value();
      else if (!handle(name, value)) throw new Error(`Unknown argument "${arg}"`);
    } catch (e) {
      return usage((e as Error).message);
    }
  }
  const missing = finish();
  if (missing !== undefined) return usage(missing);
  try {
    setLogLevel(level);
  } catch (e) {
    return usage((e as Error).message);
  }
  return undefined;
}

/** A port flag's value (0 picks a free one); throws "NAME must be a port number". */
export function portFlag(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number`);
  return n;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * "500ms", "30s", "10m", "1h" in milliseconds (rounded); a bare number is in `bare` units (seconds for flags),
 * or not a duration when `bare` is null. Undefined when it is not a duration.
 */
export function durationMs(v: string, bare: "s" | null = "s"): number | undefined {
  const m = DURATION_RE.exec(v.trim());
  if (!m || (m[2] === undefined && bare === null)) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "s"]);
}

/** A duration flag (see durationMs; positive unless `zeroOk`); throws naming the flag. */
export function durationFlag(v: string, flag: string, zeroOk = false): number {
  const ms = durationMs(v);
  if (ms === undefined || (!zeroOk && ms === 0)) {
    throw new Error(`${flag} must be a duration such as 30s, 500ms, 10m or 1h, not "${v}"`);
  }
  return ms;
}
