/** nuncio CLI entry: parses flags, picks the role, nothing else. */
import "./src/config/zod_setup.ts";
import "./src/registry/builtin.ts";
import { HELP, parseCliFlags } from "./src/server/cli_flags.ts";
import { runProxy } from "./src/server/run.ts";
import { VERSION } from "./src/server/server.ts";
import { HOT_RESTART_VERSION } from "./src/server/hot_restart.ts";
import { versionLine } from "./src/server/build_info.ts";

async function main(args: string[]): Promise<number> {
  if (args[0] === "ratelimit") {
    // loaded only for this role (node:http2 and the service stay out of the proxy's memory)
    const { runRatelimitCommand } = await import("./src/ratelimit/cli.ts");
    return await runRatelimitCommand(args.slice(1));
  }
  if (args[0] === "discovery") {
    // loaded only for this role
    const { runDiscoveryCommand } = await import("./src/discovery/cli.ts");
    return await runDiscoveryCommand(args.slice(1));
  }
  if (args[0] === "register") {
    // the check-in agent: nothing of the proxy runs
    const { runRegisterCommand } = await import("./src/register/cli.ts");
    return await runRegisterCommand(args.slice(1));
  }
  if (args[0] === "control-plane") {
    // the management server: manifests in, per-node xDS out
    const { runControlPlaneCommand } = await import("./src/control_plane/cli.ts");
    return await runControlPlaneCommand(args.slice(1));
  }
  if (args[0] === "configgen") {
    // the same builder offline: static bootstraps and the network team's templates
    const { runConfiggenCommand } = await import("./src/configgen/cli.ts");
    return await runConfiggenCommand(args.slice(1));
  }
  if (args[0] === "hot-restarter") {
    // the process manager's side of hot restarts: nothing of the proxy runs in it
    const { runHotRestarter } = await import("./src/server/hot_restarter.ts");
    return await runHotRestarter(args.slice(1));
  }
  const parsed = parseCliFlags(args, navigator.hardwareConcurrency || 1);
  switch (parsed.kind) {
    case "help":
      console.log(`nuncio ${VERSION}: ${HELP.slice("nuncio: ".length)}`);
      return 0;
    case "version":
      console.log(versionLine(VERSION));
      return 0;
    case "hot-restart-version":
      console.log(HOT_RESTART_VERSION);
      return 0;
    case "usage":
      console.error(`${parsed.message}\n\n${HELP}`);
      return 1;
  }
  return await runProxy(parsed.flags, args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
