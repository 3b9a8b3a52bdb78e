import assert from "node:assert/strict";
import { outputName, renderTemplates, type TemplateSet } from "./templates.ts";

function set(sources: Record<string, string>): TemplateSet {
  const m = new Map(Object.entries(sources));
  const renderable = [...m.keys()].filter((n) =>
    /\.(j2|njk|jinja)$/.test(n) && !n.split("/").pop()!.startsWith("_")
  )
    .sort();
  return { dir: "tpl", sources: m, renderable };
}

const contexts = new Map<string, Record<string, unknown>>([
  ["users", {
    node: "users",
    service: { service: "users", port: 8080, upstreams: [{ service: "locations", timeout: 2000 }] },
    resources: { clusters: [{ name: "local_service" }, { name: "locations" }] },
  }],
  ["edge", { node: "edge", service: null, resources: { clusters: [{ name: "users" }] } }],
]);

Deno.test("configgen templates: loops, nunjucks and configgen filters, includes, one output per node", () => {
  const r = renderTemplates(
    set({
      "clusters.txt.j2": "{% for c in resources.clusters %}{{ c.name | upper }}\n{% endfor %}",
      "conf/upstreams.yaml.njk":
        "{% include './_head.njk' %}{% if service %}{% for u in service.upstreams %}{{ u.service }}: {{ u.timeout | duration }}\n{% endfor %}{% endif %}",
      "conf/_head.njk": "# {{ node }}\n",
      "svc.json.jinja": "{% if service %}{{ service | to_json }}{% endif %}",
      "notes.md": "not a template",
    }),
    contexts,
  );
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  assert.deepEqual(r.outputs.map((o) => [o.path, o.text]), [
    ["users/clusters.txt", "LOCAL_SERVICE\nLOCATIONS\n"],
    ["edge/clusters.txt", "USERS\n"],
    ["users/conf/upstreams.yaml", "# users\nlocations: 2s\n"],
    ["edge/conf/upstreams.yaml", "# edge\n"],
    // whitespace only for the edge: not an output
    ["users/svc.json", JSON.stringify(contexts.get("users")!.service)],
  ]);
  assert.equal(outputName("a/b.yaml.jinja"), "a/b.yaml");
});

Deno.test("configgen templates: an undefined value names the template, line, column and expression", () => {
  const r = renderTemplates(set({ "a.yaml.j2": "node: {{ node }}\nport: {{ service.prot }}\n" }), contexts);
  assert.ok(!r.ok);
  assert.deepEqual(r.errors, [
    "tpl/a.yaml.j2:2:7: Undefined value: {{ service.prot }} (rendering a.yaml.j2 for node users)",
  ]);
});

Deno.test("configgen templates: errors inside an include name the included file", () => {
  const r = renderTemplates(
    set({ "a.j2": "x\n{% include '_b.j2' %}", "_b.j2": "one\n  two {{ nope }}\n" }),
    contexts,
  );
  assert.ok(!r.ok);
  assert.deepEqual(r.errors, ["tpl/_b.j2:2:7: Undefined value: {{ nope }} (rendering a.j2 for node users)"]);
});

Deno.test("configgen templates: syntax errors and calls of undefined functions are positioned 1-based", () => {
  const syntax = renderTemplates(set({ "a.j2": "x: 1\n  {% for x in %}\n" }), contexts);
  assert.ok(!syntax.ok);
  assert.match(
    syntax.errors[0],
    /^tpl\/a\.j2:2:\d+: unexpected token: %\} \(rendering a\.j2 for node users\)$/,
  );
  const call = renderTemplates(set({ "b.j2": "x: 1\n  y: {{ nofn() }}\n" }), contexts);
  assert.ok(!call.ok);
  assert.match(call.errors[0], /^tpl\/b\.j2:2:\d+: Unable to call `nofn`, which is undefined or falsey/);
  const filter = renderTemplates(set({ "c.j2": "{{ 1 | nofilter }}" }), contexts);
  assert.ok(!filter.ok);
  assert.equal(filter.errors[0], "tpl/c.j2: filter not found: nofilter (rendering c.j2 for node users)");
});

Deno.test("configgen templates: two templates rendering to one file are refused", () => {
  const r = renderTemplates(set({ "a.yaml.j2": "x", "a.yaml.njk": "y" }), contexts);
  assert.ok(!r.ok);
  assert.deepEqual(r.errors, ["tpl/a.yaml.njk: Renders to a.yaml like a.yaml.j2"]);
});
