/**
 * What build this is, for `--version` and `/server_info`. compile.sh writes the revision, its state and the
 * date into this file for the binary and puts it back afterwards; a checkout run with `deno run` says "dev"
 * and reads the revision from its .git.
 */
export const BUILD = { revision: "dev", status: "dev", date: "" };

/** The revision of the checkout this module was loaded from, when it is a git work tree. */
function checkoutRevision(): string | undefined {
  try {
    const git = new URL("../../.git/", import.meta.url);
    const head = Deno.readTextFileSync(new URL("HEAD", git)).trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    try {
      return Deno.readTextFileSync(new URL(ref, git)).trim();
    } catch {
      const packed = Deno.readTextFileSync(new URL("packed-refs", git));
      return packed.split("\n").find((l) => l.endsWith(` ${ref}`))?.split(" ")[0];
    }
  } catch {
    return undefined;
  }
}

/** Envoy's shape: `<revision>/<version>/<status>/RELEASE`, plus the Deno it runs on. */
export function versionLine(version: string): string {
  const revision = BUILD.revision === "dev" ? checkoutRevision() ?? "unknown" : BUILD.revision;
  const built = BUILD.date ? `, built ${BUILD.date}` : "";
  return `nuncio version: ${revision}/${version}/${BUILD.status}/RELEASE (deno ${Deno.version.deno}${built})`;
}
