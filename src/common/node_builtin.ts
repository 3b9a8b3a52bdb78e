/**
 * Node built-ins loaded on first use. A static `import "node:zlib"` would load Node's compatibility layer
 * (~7 MB of resident memory per isolate, and every worker is one) into proxies that never compress anything;
 * `process.getBuiltinModule` loads it synchronously the first time a config needs it.
 */

type Zlib = typeof import("node:zlib");

let zlib: Zlib | undefined;

/** node:zlib, loaded the first time it is asked for. */
export function nodeZlib(): Zlib {
  return zlib ??= (globalThis as unknown as { process: { getBuiltinModule(name: string): unknown } }).process
    .getBuiltinModule("node:zlib") as Zlib;
}
