/**
 * node_tls.ts on demand: only contexts that request client certificates or bound TLS versions use node:tls, so
 * its code stays out of every isolate until one does (a literal dynamic import, visible to `deno compile`).
 */
export type NodeTlsModule = typeof import("./node_tls.ts");

let mod: NodeTlsModule | undefined;

/** Loads node_tls.ts (once). */
export async function loadNodeTlsModule(): Promise<NodeTlsModule> {
  return mod ??= await import("./node_tls.ts");
}

/** node_tls.ts, for code on a node:tls connection (which only exists once it was loaded). */
export function nodeTlsModule(): NodeTlsModule {
  if (mod === undefined) throw new Error("node_tls.ts used before loadNodeTlsModule()");
  return mod;
}
