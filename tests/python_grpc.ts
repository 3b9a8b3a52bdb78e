/** The python3-grpcio peer used by gRPC tests: Debian's /usr/bin/python3 and grpc_tools.protoc. */

import { SYSTEM_PYTHON } from "../tools/peers.ts";

/** Debian's python (python3-grpcio installs for it, not for the python first on PATH). */
export const PY = SYSTEM_PYTHON;

/** Compiles `proto` (a path under `includeDir`) into python message and stub modules in `outDir`; throws on errors. */
export async function compileProto(includeDir: string, outDir: string, proto: string): Promise<void> {
  const r = await new Deno.Command(PY, {
    args: [
      "-m",
      "grpc_tools.protoc",
      `-I${includeDir}`,
      `--python_out=${outDir}`,
      `--grpc_python_out=${outDir}`,
      proto,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`protoc failed: ${new TextDecoder().decode(r.stderr)}`);
}
