/**
 * The salt state in config/salt, rendered the way salt renders it (Jinja, here nunjucks, with `salt`,
 * `pillar` and `grains` in the context, then YAML) for sample grains and pillar, and checked: every state is
 * one known state function with its arguments, every requisite names a state of that module, every
 * `salt://` source exists in the file roots the README gives, and the rendered bootstrap passes `nuncio
 * --mode validate` (what the state's check_cmd runs before writing it). Salt itself is not packaged here.
 */
import assert from "node:assert/strict";
import nunjucks from "nunjucks";
import { parse } from "yaml";
import { run } from "./helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The master's file_roots, as config/salt/README.md sets them. */
const FILE_ROOTS = [`${ROOT}config/salt`, `${ROOT}config`];

type Py = Record<string, unknown>;

/** A Python-like dict for Jinja: `.get(key, default)` as salt's templates use it. */
function dict(o: Py): Py {
  const out: Py = {};
  for (const [k, v] of Object.entries(o)) out[k] = py(v);
  Object.defineProperty(out, "get", { value: (k: string, d: unknown = null) => k in out ? out[k] : py(d) });
  return out;
}

/** A value as Jinja under salt sees it: mappings (a template's `{}` literals too) are dicts. */
function py(v: unknown): unknown {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !("get" in v) ? dict(v as Py) : v;
}

function context(pillar: Py, grains: Py): Py {
  const p = dict(pillar);
  return {
    pillar: p,
    grains: dict(grains),
    salt: {
      // salt['pillar.get']('a:b', default)
      "pillar.get": (path: string, d: unknown = "") => {
        let v: unknown = p;
        for (const k of path.split(":")) {
          if (v === null || typeof v !== "object" || !(k in (v as Py))) return py(d);
          v = (v as Py)[k];
        }
        return v;
      },
    },
  };
}

function render(path: string, ctx: Py): string {
  const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true });
  return env.renderString(Deno.readTextFileSync(path), ctx);
}

/** salt:// URL -> the file it names in the file roots, or undefined. */
function resolveSource(url: string): string | undefined {
  const rel = url.slice("salt://".length);
  for (const root of FILE_ROOTS) {
    try {
      if (Deno.statSync(`${root}/${rel}`).isFile) return `${root}/${rel}`;
    } catch {
      // not in this root
    }
  }
  return undefined;
}

/** State functions the state may use, with the arguments each takes (salt's documented ones). */
const FUNCTIONS: Record<string, string[]> = {
  "group.present": ["name", "system"],
  "user.present": ["name", "system", "gid", "home", "createhome", "shell"],
  "file.managed": [
    "name",
    "source",
    "source_hash",
    "template",
    "mode",
    "user",
    "group",
    "makedirs",
    "check_cmd",
    "contents",
  ],
  "file.directory": ["name", "user", "group", "mode", "makedirs"],
  "sysctl.present": ["name", "value"],
  "module.run": ["service.systemctl_reload"],
  "service.running": ["name", "enable", "reload"],
};
const REQUISITES = ["require", "watch", "onchanges"];

Deno.test("salt state: renders to valid states whose sources exist and whose bootstrap validates", async () => {
  const pillar = {
    nuncio: {
      binary_source: "https://artifacts.internal/nuncio/0.1.0/nuncio",
      binary_hash: "sha256=" + "0".repeat(64),
      service_cluster: "rides",
      admin_port: 9911,
      control_plane: { address: "xds.internal", port: 18000 },
      drain_time_s: 45,
    },
  };
  const grains = { id: "rides-7f3a.us-east-1", ec2_availability_zone: "us-east-1a" };
  const ctx = context(pillar, grains);
  const sls = parse(render(`${ROOT}config/salt/nuncio/init.sls`, ctx)) as Record<string, Py>;
  const ids = Object.keys(sls);
  assert.ok(ids.length >= 8);
  const byId = new Map<string, string>();
  for (const [id, body] of Object.entries(sls)) {
    const fns = Object.keys(body);
    assert.equal(fns.length, 1, `${id}: one state function`);
    const fn = fns[0];
    assert.ok(fn in FUNCTIONS, `${id}: unknown state function ${fn}`);
    byId.set(id, fn.split(".")[0]);
  }
  for (const [id, body] of Object.entries(sls)) {
    const [fn, args] = Object.entries(body)[0] as [string, Py[]];
    assert.ok(Array.isArray(args), `${id}: arguments are a list`);
    for (const arg of args) {
      const keys = Object.keys(arg);
      assert.equal(keys.length, 1, `${id}: ${JSON.stringify(arg)}`);
      const [k] = keys;
      if (REQUISITES.includes(k)) {
        for (const req of arg[k] as Py[]) {
          const [mod, target] = Object.entries(req)[0] as [string, string];
          assert.equal(byId.get(target), mod, `${id}: ${k} ${mod}: ${target} names no such state`);
        }
        continue;
      }
      assert.ok(FUNCTIONS[fn].includes(k), `${id}: ${fn} takes no argument ${k}`);
      if (k === "source" && String(arg[k]).startsWith("salt://")) {
        assert.ok(resolveSource(String(arg[k])), `${id}: ${arg[k]} is in no file root`);
      }
    }
  }
  // the service reloads (hot restart), never restarts, on every file it depends on
  const service = Object.fromEntries(
    (sls["nuncio-service"]["service.running"] as Py[]).map((a) => Object.entries(a)[0]),
  );
  assert.equal(service.reload, true);
  const watched = (service.watch as Py[]).map((w) => Object.values(w)[0]);
  for (const f of ["nuncio-binary", "nuncio-bootstrap", "nuncio-unit", "nuncio-start-script"]) {
    assert.ok(watched.includes(f), `service does not watch ${f}`);
  }
  // the units the state lays down are the ones config/systemd ships
  const unit = Object.fromEntries(
    (sls["nuncio-unit"]["file.managed"] as Py[]).map((a) => Object.entries(a)[0]),
  );
  assert.equal(resolveSource(String(unit.source)), `${ROOT}config/systemd/nuncio.service`);
  const env = Object.fromEntries(
    (sls["nuncio-environment"]["file.managed"] as Py[]).map((a) => Object.entries(a)[0]),
  );
  assert.match(String(env.contents), /NUNCIO_DRAIN_TIME_S=45/);

  // the bootstrap template renders to a bootstrap nuncio validates (the state's check_cmd)
  const boot = Object.fromEntries(
    (sls["nuncio-bootstrap"]["file.managed"] as Py[]).map((a) => Object.entries(a)[0]),
  );
  assert.equal(boot.check_cmd, "/usr/local/bin/nuncio --mode validate -c");
  const rendered = render(resolveSource(String(boot.source))!, ctx);
  const doc = parse(rendered);
  assert.equal(doc.node.id, grains.id);
  assert.equal(doc.node.cluster, "rides");
  assert.equal(doc.admin.address.socket_address.port_value, 9911);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/bootstrap.yaml`;
    Deno.writeTextFileSync(path, rendered);
    const v = await run(Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, "--mode", "validate", "-c", path]);
    assert.equal(v.code, 0, v.stderr);
    // a pillar that breaks the bootstrap is caught by the same check before salt writes the file
    const broken = context({ nuncio: { ...pillar.nuncio, admin_port: "not-a-port" } }, grains);
    Deno.writeTextFileSync(path, render(resolveSource(String(boot.source))!, broken));
    const bad = await run(Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, "--mode", "validate", "-c", path]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bootstrap\.yaml:\d+:\d+: admin\.address\.socket_address\.port_value/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // defaults: an empty pillar still renders (every key has a default)
  const bare = parse(render(`${ROOT}config/salt/nuncio/files/bootstrap.yaml.j2`, context({}, { id: "h1" })));
  assert.equal(bare.node.cluster, "h1");
});
