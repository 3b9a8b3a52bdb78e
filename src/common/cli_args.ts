/** The flag loop shared by nuncio's command lines (`nuncio`, `nuncio ratelimit`). */

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
