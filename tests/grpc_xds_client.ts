/**
 * The gRPC peers of tests/control_plane_grpc_xds_test.ts, on @grpc/grpc-js (not nuncio's code), run as
 * subprocesses so grpc-js's global state and the xDS bootstrap (an environment variable) stay out of the test
 * process. Both speak JSON lines: commands on stdin, events on stdout.
 *
 * - `deno run -A tests/grpc_xds_client.ts backends NAME=IP ...`: one Greeter server per NAME, bound to IP on a
 *   free port, answering SayHello with its NAME and the :authority it saw. Prints
 *   `{"event":"listening","backends":[{"name","ip","port"}]}`; exits on `{"cmd":"exit"}` or stdin's end.
 * - `deno run -A tests/grpc_xds_client.ts client TARGET`: a proxyless gRPC client of @grpc/grpc-js-xds
 *   (bootstrap from GRPC_XDS_BOOTSTRAP_CONFIG or GRPC_XDS_BOOTSTRAP) on TARGET, e.g. `xds:///greeter`.
 *   `{"cmd":"call","n":N,"timeoutMs":T}` makes N unary calls one after another and prints
 *   `{"event":"calls","results":[{"backend","authority"} | {"error","code"}]}`; `{"cmd":"exit"}` closes the
 *   channel and exits.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO = new URL("./fixtures/grpc_xds/greeter.proto", import.meta.url).pathname;

// deno-lint-ignore no-explicit-any -- grpc-js's dynamic service constructors are untyped
type Any = any;

function out(o: unknown): void {
  console.log(JSON.stringify(o));
}

function greeterService(): Any {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
  return (grpc.loadPackageDefinition(def) as Any).nuncio.xdstest.Greeter;
}

/** Calls `f` with each JSON command read from stdin; resolves at stdin's end. */
async function commands(f: (cmd: Any) => Promise<boolean | void>): Promise<void> {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line === "") continue;
      if (await f(JSON.parse(line)) === false) return;
    }
  }
}

async function backends(specs: string[]): Promise<void> {
  const Greeter = greeterService();
  const servers: grpc.Server[] = [];
  const listening: { name: string; ip: string; port: number }[] = [];
  for (const spec of specs) {
    const [name, ip] = spec.split("=");
    const server = new grpc.Server();
    server.addService(Greeter.service, {
      SayHello: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        cb(null, { backend: name, authority: call.getHost() });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `${ip}:0`,
        grpc.ServerCredentials.createInsecure(),
        (e, p) => e ? reject(e) : resolve(p),
      )
    );
    servers.push(server);
    listening.push({ name, ip, port });
  }
  out({ event: "listening", backends: listening });
  await commands((cmd) => Promise.resolve(cmd.cmd !== "exit"));
  for (const s of servers) s.forceShutdown();
  Deno.exit(0);
}

async function client(target: string): Promise<void> {
  const xds = await import("@grpc/grpc-js-xds/build/src/index.js");
  xds.register();
  const Greeter = greeterService();
  const c = new Greeter(target, grpc.credentials.createInsecure());
  const one = (timeoutMs: number) =>
    new Promise<Record<string, unknown>>((resolve) => {
      c.SayHello(
        { name: "web" },
        { deadline: Date.now() + timeoutMs },
        (e: grpc.ServiceError | null, r: Any) => {
          if (e) resolve({ error: e.details || e.message, code: e.code });
          else resolve({ backend: r.backend, authority: r.authority });
        },
      );
    });
  await commands(async (cmd) => {
    if (cmd.cmd === "exit") return false;
    if (cmd.cmd === "call") {
      const results = [];
      for (let i = 0; i < (cmd.n ?? 1); i++) results.push(await one(cmd.timeoutMs ?? 5000));
      out({ event: "calls", results });
    }
  });
  c.close();
  Deno.exit(0);
}

const [role, ...rest] = Deno.args;
if (role === "backends") await backends(rest);
else if (role === "client") await client(rest[0]);
else {
  console.error("usage: grpc_xds_client.ts backends NAME=IP... | client TARGET");
  Deno.exit(2);
}
