import assert from "node:assert/strict";
import { requestFromJson, responseToJson } from "./json.ts";
import { Code, RateLimitServiceError, Unit } from "./types.ts";

Deno.test("proto3 JSON mapping", () => {
  const camel = requestFromJson({
    domain: "d",
    descriptors: [{
      entries: [{ key: "k", value: "v" }],
      limit: { requestsPerUnit: 5, unit: "MINUTE" },
      hitsAddend: "3",
    }],
    hitsAddend: 2,
  });
  assert.deepEqual(camel, {
    domain: "d",
    descriptors: [{
      entries: [{ key: "k", value: "v" }],
      limit: { requestsPerUnit: 5, unit: Unit.MINUTE },
      hitsAddend: 3,
    }],
    hitsAddend: 2,
  });
  const snake = requestFromJson({
    domain: "d",
    descriptors: [{
      entries: [{ key: "k" }],
      limit: { requests_per_unit: 5, unit: 2 },
      hits_addend: { value: 0 },
    }],
    hits_addend: 2,
  });
  assert.deepEqual(snake.descriptors[0], {
    entries: [{ key: "k", value: "" }],
    limit: { requestsPerUnit: 5, unit: 2 },
    hitsAddend: 0,
  });
  assert.equal(snake.hitsAddend, 2);
  for (
    const bad of [[], "x", { domain: 1 }, { descriptors: {} }, { descriptors: [{ entries: [{ key: 1 }] }] }, {
      hitsAddend: -1,
    }]
  ) {
    assert.throws(() => requestFromJson(bad), RateLimitServiceError);
  }
  assert.deepEqual(
    responseToJson({
      overallCode: Code.OK,
      statuses: [
        {
          code: Code.OK,
          currentLimit: { name: "n", requestsPerUnit: 3, unit: Unit.SECOND },
          limitRemaining: 2,
          durationUntilResetMs: 1500,
        },
        { code: Code.OK, limitRemaining: 0 },
      ],
      responseHeadersToAdd: [],
      requestHeadersToAdd: [{ key: "a", value: "b" }],
    }),
    {
      overallCode: "OK",
      statuses: [
        {
          code: "OK",
          currentLimit: { name: "n", requestsPerUnit: 3, unit: "SECOND" },
          limitRemaining: 2,
          durationUntilReset: "1.5s",
        },
        { code: "OK" },
      ],
      requestHeadersToAdd: [{ key: "a", value: "b" }],
    },
  );
});
