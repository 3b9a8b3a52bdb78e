import assert from "node:assert/strict";
import { filterLabel } from "./debug_header.ts";

Deno.test("filterLabel: snake_case names from the filter classes", () => {
  class RouterFilter {}
  class HttpRateLimitFilter {}
  assert.equal(filterLabel(new RouterFilter(), 0), "router");
  assert.equal(filterLabel(new HttpRateLimitFilter(), 1), "http_rate_limit");
  assert.equal(filterLabel({}, 2), "filter2");
});
