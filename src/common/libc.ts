/**
 * Linux's libc through `Deno.dlopen` (needs --allow-ffi), opened once per isolate on first use and kept: the
 * socket options Deno's API lacks (transport/sockopt.ts), the start-up page release (common/code_pages.ts)
 * and the C heap trim (common/heap.ts).
 * An isolate whose config needs none of it never loads it. Without --allow-ffi nothing is asked for (no
 * permission prompt on a terminal): `libc()` answers null and `libcUnavailable()` says why.
 */

const SYMBOLS = {
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  // glibc only (null elsewhere)
  malloc_trim: { parameters: ["usize"], result: "i32", optional: true },
} as const;

/** The libc functions nuncio calls. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Why libc is unavailable: another OS, no --allow-ffi, or no libc to open (`detail`: the loader's words). */
export interface LibcMissing {
  kind: "os" | "permission" | "open";
  detail: string;
}

let loaded: Libc | null | undefined;
let why: LibcMissing | null = null;

/** libc, or null where FFI or libc is unavailable (the reason in `libcUnavailable()`). */
export function libc(): Libc | null {
  if (loaded !== undefined) return loaded;
  if (Deno.build.os !== "linux") {
    why = { kind: "os", detail: Deno.build.os };
    return loaded = null;
  }
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    why = { kind: "permission", detail: "" };
    return loaded = null;
  }
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      return loaded = Deno.dlopen(name, SYMBOLS).symbols;
    } catch (e) {
      why = { kind: "open", detail: `cannot open ${name} (${(e as Error).message})` };
    }
  }
  return loaded = null;
}

/** Why `libc()` answered null (null when it did not). */
export function libcUnavailable(): LibcMissing | null {
  return libc() === null ? why : null;
}
