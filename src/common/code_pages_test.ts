import assert from "node:assert/strict";
import { readOwnProcFile, releasableMappings, releaseStartupPages } from "./code_pages.ts";
import { libc } from "./libc.ts";

libc(); // opened once per isolate and kept (common/libc.ts), not by whichever test comes first

/** An smaps entry with the given private figures (kB). */
function entry(
  header: string,
  f: { anon?: number; swap?: number; pdirty?: number; sdirty?: number } = {},
): string {
  return `${header}
Size:                  8 kB
Rss:                   8 kB
Shared_Clean:          0 kB
Shared_Dirty:          ${f.sdirty ?? 0} kB
Private_Clean:         8 kB
Private_Dirty:         ${f.pdirty ?? 0} kB
Anonymous:             ${f.anon ?? 0} kB
AnonHugePages:         0 kB
Swap:                  ${f.swap ?? 0} kB
VmFlags: rd mr mw me`;
}

const SMAPS = [
  entry("55d0c0000000-55d0c1b8e000 r--p 00000000 fe:00 1442222                    /usr/bin/deno"),
  entry("55d0c1b8e000-55d0c5882000 r-xp 01b8e000 fe:00 1442222                    /usr/bin/deno"),
  // relocated data made read-only (RELRO): copied-on-write pages
  entry("55d0c5882000-55d0c5884000 r--p 05881000 fe:00 1442222                    /usr/bin/deno", {
    anon: 8,
    pdirty: 8,
  }),
  entry("55d0c5884000-55d0c5af4000 rw-p 05883000 fe:00 1442222                    /usr/bin/deno"),
  entry("55d0c6000000-55d0c7000000 rw-p 00000000 00:00 0                          [heap]", { anon: 8 }),
  entry(
    "7f24cc600000-7f24ccbb9000 r--s 00000000 fe:00 16039943                   /root/.cache/deno/dep_cache",
  ),
  entry(
    "7f24ccd9d000-7f24ccda5000 rw-s 00000000 fe:00 16042079                   /root/.cache/deno/dep_cache-shm",
    {
      sdirty: 8,
    },
  ),
  entry("7f24cd000000-7f24cd001000 r-xp 00000000 fe:00 77                         /tmp/old.so (deleted)"),
  entry("7f24cd100000-7f24cd101000 r--p 00000000 fe:00 78                         /usr/lib/swapped.so", {
    swap: 4,
  }),
  entry("7f24ce000000-7f24ce100000 ---p 00000000 00:00 0 "),
  entry("7ffd1000000-7ffd1021000 rw-p 00000000 00:00 0                            [stack]", { anon: 8 }),
  entry("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]"),
].join("\n");

Deno.test("releasableMappings: clean read-only file mappings only", () => {
  assert.deepEqual(
    releasableMappings(SMAPS).map((m) => [m.start.toString(16), (m.end - m.start).toString(16), m.path]),
    [
      ["55d0c0000000", "1b8e000", "/usr/bin/deno"],
      ["55d0c1b8e000", "3cf4000", "/usr/bin/deno"],
      ["7f24cc600000", "5b9000", "/root/.cache/deno/dep_cache"],
    ],
  );
});

function rssFileKiB(): number {
  return Number(/RssFile:\s+(\d+)/.exec(readOwnProcFile("status")!)![1]);
}

Deno.test({
  name: "releaseStartupPages: the file-backed resident set shrinks and the process runs on",
  ignore: Deno.build.os !== "linux",
  fn() {
    const before = rssFileKiB();
    const advised = releaseStartupPages();
    const after = rssFileKiB();
    assert.ok(advised > 0, `madvise advised ${advised} bytes`);
    // the test runner's start-up code (module loading, type stripping) is most of what it has mapped
    assert.ok(after < before * 0.8, `RssFile ${before} -> ${after} KiB`);
    // released pages come back from the page cache as they are used
    assert.equal(JSON.parse(JSON.stringify({ a: [1, "x"] })).a[1], "x");
    assert.equal(releasableMappings(readOwnProcFile("smaps")!).length > 0, true);
  },
});
