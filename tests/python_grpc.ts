/** The python3-grpcio peer used by gRPC tests: Debian's /usr/bin/python3 and grpc_tools.protoc. */

/** Debian's python (python3-grpcio installs for it, not for the python first on PATH). */
export const PY = "/usr/bin/python3";

/** True when grpcio and grpc_tools import (`.ci/run` installs them). */
export function hasPythonGrpc(): boolean {
  try {
    return new Deno.Command(PY, { args: ["-c", "import grpc, grpc_tools"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

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
