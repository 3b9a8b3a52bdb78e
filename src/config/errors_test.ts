import assert from "node:assert/strict";
import { configError, ConfigIssueError, formatConfigError, formatPath } from "./errors.ts";

Deno.test("formatPath renders keys and indexes", () => {
  assert.equal(formatPath([]), "");
  assert.equal(
    formatPath(["static_resources", "clusters", 0, "lb_policy"]),
    "static_resources.clusters[0].lb_policy",
  );
  assert.equal(formatPath(["typed_config", "@type"]), "typed_config.@type");
  assert.equal(
    formatPath(["metadata", "filter_metadata", "envoy.lb"]),
    'metadata.filter_metadata["envoy.lb"]',
  );
  assert.equal(formatPath([0, "a"]), "[0].a");
});

Deno.test("formatConfigError", () => {
  const e = { file: "config/demo.yaml", line: 12, column: 7, path: "a.b[0]", message: "Bad" };
  assert.equal(formatConfigError(e), "config/demo.yaml:12:7: a.b[0]: Bad");
  assert.equal(formatConfigError({ ...e, path: "" }), "config/demo.yaml:12:7: Bad");
  assert.equal(formatConfigError({ ...e, line: 0, column: 0 }), "config/demo.yaml: a.b[0]: Bad");
});

Deno.test("ConfigIssueError carries its issues", () => {
  const path = ["static_resources", "listeners", 0];
  const issue = configError(path, "No such cluster");
  path.push("x"); // configError copies the path
  assert.deepEqual(issue, { path: ["static_resources", "listeners", 0], message: "No such cluster" });
  const err = new ConfigIssueError([issue]);
  assert.ok(err instanceof Error);
  assert.equal(err.message, "static_resources.listeners[0]: No such cluster");
  assert.deepEqual(err.issues, [issue]);
});
