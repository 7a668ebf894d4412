// The search box's translator (services/gateway/static/ui/search.js), run by `node --test` from
// tests/gateway/test_search_js.py. The module is loaded from its source as the browser loads it
// (an ES module), whatever Node's default module type.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const source = readFileSync(new URL("../../../services/gateway/static/ui/search.js", import.meta.url));
const { queryOfParams, searchHash, suggest, toFilter } =
  await import(`data:text/javascript;base64,${source.toString("base64")}`);

const NOW = new Date("2026-12-01T12:00:00Z");
const filter = (query) => {
  const translated = toFilter(query, NOW);
  assert.deepEqual(translated.errors, [], query);
  return translated.filter;
};
const errors = (query) => toFilter(query, NOW).errors;

test("qualifiers become AND-ed terms, several values OR-ed", () => {
  assert.equal(filter('state:failed type:image.build tag:nightly meta.user:42 error:"timed out"'),
    'state = FAILED AND type = "image.build" AND tags:"nightly" AND metadata.user = "42" AND error:"timed out"');
  assert.equal(filter("state:failed,cancelled"), "(state = FAILED OR state = CANCELLED)");
  assert.equal(filter("wait:concurrency_limit,in_line"),
    "(wait_reason = CONCURRENCY_LIMIT OR wait_reason = IN_LINE)");
  assert.equal(filter("fingerprint:5d41402abc4b2a76"), 'error_fingerprint = "5d41402abc4b2a76"');
  assert.equal(filter('meta.user:"Ada Lovelace"'), 'metadata.user = "Ada Lovelace"');
  assert.equal(filter("tags:a metadata.team:x"), 'tags:"a" AND metadata.team = "x"');
  assert.equal(filter(""), "");
});

test("a negation is != for each value", () => {
  assert.equal(filter("-type:x -meta.user:42"), 'type != "x" AND metadata.user != "42"');
  assert.equal(filter("-state:failed,cancelled"), "state != FAILED AND state != CANCELLED");
});

test("relative times count back from now; > is longer ago", () => {
  assert.equal(filter("created:>1h"), 'create_time < "2026-12-01T11:00:00.000Z"');
  assert.equal(filter("created:<1h"), 'create_time > "2026-12-01T11:00:00.000Z"');
  assert.equal(filter("finished:<30m"), 'finish_time > "2026-12-01T11:30:00.000Z"');
  assert.equal(filter("created:>=2d"), 'create_time <= "2026-11-29T12:00:00.000Z"');
  assert.equal(filter("created:>1w"), 'create_time < "2026-11-24T12:00:00.000Z"');
});

test("absolute times are local unless they name a zone; a bare date is that day", () => {
  const local = (text) => new Date(text).toISOString();
  assert.equal(filter("created:>2026-12-01"), `create_time > "${local("2026-12-01T00:00")}"`);
  assert.equal(filter("created:<2026-12-01T10:00"), `create_time < "${local("2026-12-01T10:00")}"`);
  assert.equal(filter("created:<2026-12-01T10:00Z"), 'create_time < "2026-12-01T10:00:00.000Z"');
  assert.equal(filter("finished:2026-12-01"),
    `finish_time >= "${local("2026-12-01T00:00")}" AND finish_time < "${local("2026-12-02T00:00")}"`);
});

test("bare words search the error text; one that could be an id is offered as one", () => {
  assert.deepEqual(toFilter("convert", NOW),
    { filter: 'error:"convert"', errors: [], jobId: "convert", raw: false });
  assert.equal(filter('"timed out" state:failed'), 'error:"timed out" AND state = FAILED');
  assert.equal(toFilter("Timeout state:failed", NOW).jobId, "");
});

test("ListJobs' own syntax passes through", () => {
  const aip = 'state = FAILED AND error_fingerprint = "5d41402abc4b2a76"';
  assert.deepEqual(toFilter(aip, NOW), { filter: aip, errors: [], jobId: "", raw: true });
  assert.equal(toFilter('tags:"odd" OR tags:"b"', NOW).filter, 'tags:"odd" OR tags:"b"');
});

test("bad words are named and nothing is translated", () => {
  assert.deepEqual(errors("colour:red state:failed"),
    ["colour: unknown qualifier; use state, type, tag, meta.KEY, error, created, finished, wait, fingerprint"]);
  assert.equal(toFilter("colour:red", NOW).filter, "");
  assert.match(errors("state:done")[0], /^state: "done" is not one of scheduled/);
  assert.match(errors("created:1h")[0], /^created: 1h needs > /);
  assert.match(errors("created:>yesterday")[0], /^created: ">yesterday" is not a time/);
  assert.match(errors("-tag:x")[0], /^-tag: tag cannot be negated/);
  assert.match(errors("state:")[0], /^state: needs a value/);
  assert.match(errors('error:"open')[0], /a quote is not closed/);
  assert.match(errors("fingerprint:xyz")[0], /^fingerprint: "xyz" is not a fingerprint/);
  assert.match(errors("-oops")[0], /only a qualifier can be negated/);
  assert.match(errors('error:a\\b')[0], /^error: a value cannot hold/);
  assert.equal(errors("type:1bad state:nope").length, 2);
});

test("the older addresses map to queries, and a query to a readable address", () => {
  assert.equal(queryOfParams(new URLSearchParams("state=FAILED")), "state:failed");
  assert.equal(queryOfParams(new URLSearchParams("type=report.nightly")), "type:report.nightly");
  assert.equal(queryOfParams(new URLSearchParams('filter=error_fingerprint+%3D+"ab"')),
    'error_fingerprint = "ab"');
  assert.equal(searchHash("#/queues/q", "state:failed type:x", "create_time asc"),
    "#/queues/q?q=state:failed+type:x&sort=create_time+asc");
  assert.equal(searchHash("#/jobs", "  "), "#/jobs");
  const params = new URLSearchParams(searchHash("#/q", 'error:"a+b & c"').split("?")[1]);
  assert.equal(params.get("q"), 'error:"a+b & c"');
});

test("suggestions: qualifier names, then the values of the qualifier under the cursor", () => {
  const sources = { types: ["image.build", "report.broken"], metadata: { user: ["42", "ada l"] } };
  const at = (query, cursor = query.length) => suggest(query, cursor, sources, NOW);
  assert.deepEqual(at("st").items.map((i) => i.insert), ["state:"]);
  assert.equal(at("st").items[0].complete, false);
  assert.deepEqual(at("-ty").items.map((i) => i.insert), ["-type:"]);
  assert.ok(at("me").items.some((i) => i.insert === "meta.user:"));
  const states = at("type:x state:f");
  assert.deepEqual(states.items.map((i) => i.label), ["failed"]);
  assert.deepEqual([states.start, states.end], [13, 14]);
  assert.equal(states.items[0].hint, "jobs in state FAILED");
  assert.deepEqual(at("state:failed,c").items.map((i) => i.label), ["cancelled"]);
  assert.equal(at("state:failed,c").start, 13);
  assert.deepEqual(at("type:build").items.map((i) => i.label), ["image.build"]);
  assert.deepEqual(at("meta.user:").items.map((i) => i.insert), ["42", '"ada l"']);
  assert.ok(at("created:").items.some((i) => i.label === ">1h"));
  const middle = at("state:f type:x", 7);  // the cursor in the first word
  assert.deepEqual([middle.start, middle.end, middle.items[0].label], [6, 7, "failed"]);
  assert.deepEqual(at("state = F").items, []);  // ListJobs' syntax: no qualifiers to offer
});
