/** Locating benchmark tools and installing missing ones with apt-get. */

/** A tool the benchmark needs and the Debian packages that provide it, in order of preference. */
export interface ToolSpec {
  /** Executable name, e.g. "nginx". */
  bin: string;
  /** Debian packages to try, e.g. ["nginx-light", "nginx"]. */
  packages: string[];
}

const EXTRA_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

/** Returns the absolute path of an executable found on PATH or in the sbin directories, if any. */
export function findExecutable(bin: string): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const path = `${dir}/${bin}`;
    try {
      const info = Deno.statSync(path);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

async function aptGet(args: string[]): Promise<boolean> {
  const out = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return out.success;
}

/**
 * Makes sure every tool exists, installing the first package that works with `apt-get install -y`
 * (running `apt-get update` once if an install fails). Returns bin -> absolute path; throws if a
 * tool is still missing.
 */
export async function ensureTools(specs: ToolSpec[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let updated = false;
  for (const spec of specs) {
    let path = findExecutable(spec.bin);
    for (let attempt = 0; !path && attempt < 2; attempt++) {
      if (attempt === 1) {
        if (updated) break;
        console.error("apt-get update");
        await aptGet(["update"]);
        updated = true;
      }
      for (const pkg of spec.packages) {
        console.error(`installing ${pkg} (for ${spec.bin})`);
        if (await aptGet(["install", "-y", "--no-install-recommends", pkg])) {
          path = findExecutable(spec.bin);
          if (path) break;
        }
      }
    }
    if (!path) throw new Error(`Missing ${spec.bin} and could not install ${spec.packages.join(" or ")}`);
    found.set(spec.bin, path);
  }
  return found;
}
