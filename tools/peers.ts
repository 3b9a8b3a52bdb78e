/**
 * The real peers the test suite and the benchmarks run against, and the step that brings them before any
 * test starts (`deno task test` runs it first). A missing peer is installed when the user is root with apt
 * (one `apt-get update`, one install of every missing package) and said so; otherwise the run stops before any
 * test with one line naming the packages and the command that installs them. No test skips for a missing peer.
 */

/** One peer: what proves it is present, and the Debian package that brings it. */
export interface Peer {
  /** What the tests call it. */
  name: string;
  /** The Debian package that installs it. */
  pkg: string;
  /** A command that must be on PATH, or a Python module list that /usr/bin/python3 must import. */
  check: { command: string } | { python: string };
}

/** Every peer the tests and benchmarks use (facts.md: the Debian python3-* packages are for /usr/bin/python3). */
export const PEERS: readonly Peer[] = [
  { name: "curl", pkg: "curl", check: { command: "curl" } },
  { name: "openssl", pkg: "openssl", check: { command: "openssl" } },
  { name: "h2load", pkg: "nghttp2-client", check: { command: "h2load" } },
  { name: "nghttp", pkg: "nghttp2-client", check: { command: "nghttp" } },
  { name: "redis-server", pkg: "redis-server", check: { command: "redis-server" } },
  { name: "redis-cli", pkg: "redis-tools", check: { command: "redis-cli" } },
  { name: "python3-grpcio", pkg: "python3-grpcio", check: { python: "grpc" } },
  { name: "grpc-tools", pkg: "python3-grpc-tools", check: { python: "grpc_tools" } },
  { name: "nginx", pkg: "nginx-light", check: { command: "nginx" } },
  { name: "haproxy", pkg: "haproxy", check: { command: "haproxy" } },
  { name: "wrk", pkg: "wrk", check: { command: "wrk" } },
  { name: "promtool", pkg: "prometheus", check: { command: "promtool" } },
  { name: "chromium", pkg: "chromium", check: { command: "chromium" } },
  { name: "iptables", pkg: "iptables", check: { command: "iptables" } },
  { name: "redis-benchmark", pkg: "redis-tools", check: { command: "redis-benchmark" } },
  { name: "nutcracker", pkg: "nutcracker", check: { command: "nutcracker" } },
  { name: "python3-pymongo", pkg: "python3-pymongo", check: { python: "pymongo" } },
  { name: "systemd-analyze", pkg: "systemd", check: { command: "systemd-analyze" } },
  { name: "node", pkg: "nodejs", check: { command: "node" } },
];

/** The interpreter the Debian python3-* packages install for. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/** What the environment offers: how to probe a peer, and whether packages can be installed. */
export interface PeerEnv {
  /** True when the peer is usable. */
  present(peer: Peer): boolean;
  /** True when running as root. */
  root: boolean;
  /** True when apt-get is on PATH. */
  apt: boolean;
}

/** What to do before the tests: nothing, install these packages, or stop with a message. */
export type PeerPlan =
  | { action: "none" }
  | { action: "install"; missing: Peer[]; packages: string[] }
  | { action: "stop"; missing: Peer[]; packages: string[]; message: string };

/** Decides from the environment; pure, so the decision is unit-tested without touching the machine. */
export function planPeers(env: PeerEnv, peers: readonly Peer[] = PEERS): PeerPlan {
  const missing = peers.filter((p) => !env.present(p));
  if (missing.length === 0) return { action: "none" };
  const packages = [...new Set(missing.map((p) => p.pkg))];
  if (env.root && env.apt) return { action: "install", missing, packages };
  const how = env.apt
    ? `sudo apt-get update && sudo apt-get install -y ${packages.join(" ")}`
    : `install the Debian packages ${packages.join(" ")} (or their equivalents)`;
  return {
    action: "stop",
    missing,
    packages,
    message: `Missing test peers: ${missing.map((p) => p.name).join(", ")}; install them with: ${how}`,
  };
}

/** True when `command` is an executable file on PATH. */
export function onPath(command: string, path = Deno.env.get("PATH") ?? ""): boolean {
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const st = Deno.statSync(`${dir}/${command}`);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function pythonImports(modules: string): boolean {
  try {
    return new Deno.Command(SYSTEM_PYTHON, {
      args: ["-c", `import ${modules}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/** The real environment of this machine. */
export function machineEnv(): PeerEnv {
  return {
    present: (p) => "command" in p.check ? onPath(p.check.command) : pythonImports(p.check.python),
    root: Deno.uid() === 0,
    apt: onPath("apt-get"),
  };
}

async function apt(args: string[]): Promise<boolean> {
  const out = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) console.error(new TextDecoder().decode(out.stderr).trim());
  return out.success;
}

/** Brings the peers (or says what is missing); returns the process exit code. */
export async function ensurePeers(env: PeerEnv = machineEnv()): Promise<number> {
  const plan = planPeers(env);
  if (plan.action === "none") return 0;
  if (plan.action === "stop") {
    console.error(plan.message);
    return 1;
  }
  console.error(
    `Installing missing test peers (${plan.missing.map((p) => p.name).join(", ")}): apt-get install ${
      plan.packages.join(" ")
    }`,
  );
  if (!await apt(["update", "-q"]) || !await apt(["install", "-y", "-q", ...plan.packages])) {
    console.error(`Installing ${plan.packages.join(" ")} failed`);
    return 1;
  }
  const still = planPeers(env);
  if (still.action !== "none") {
    console.error(`Still missing after apt-get install: ${still.missing.map((p) => p.name).join(", ")}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await ensurePeers());
