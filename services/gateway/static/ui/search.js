// The job list's search box, read the way Oban Web's search reads: qualifiers
// (`state:failed type:image.build tag:nightly meta.user:42 error:"timed out" created:>1h`) and bare
// words (error text), translated into ListJobs' AIP-160 filter (services/scheduler/job_filter.py),
// and what the autocomplete offers for the word under the cursor. Pure functions of their
// arguments (the time is one of them): no page, no calls, so `node --test` runs them as they are.

export const STATES = ["scheduled", "blocked", "queued", "running", "succeeded", "failed", "cancelled"];
export const WAIT_REASONS = [
  "scheduled", "backoff", "dependency", "queue_paused", "concurrency_limit", "rate_limited",
  "no_worker", "in_line", "dispatched",
];
// As services/common/names.py has them.
const JOB_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const JOB_TYPE = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;
const TAG = /^[A-Za-z0-9_.:=-]{1,64}$/;
const METADATA_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
const FINGERPRINT = /^[0-9a-f]{16}$/;
const UNITS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const RELATIVE = /^(\d+(?:\.\d+)?)([smhdw])$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$/;
const QUALIFIED = /^(-?)([A-Za-z_][\w.]*):(.*)$/s;
// ListJobs' syntax rather than qualifiers: a comparison (`a = b`, `x >= "..."`) or AND / OR.
const AIP = /(^|[\s(])[A-Za-z_][\w.]*\s*(=|!=|<=|>=|<|>)|\b(AND|OR)\b/;
const ALIASES = { tags: "tag", metadata: "meta", wait_reason: "wait", error_fingerprint: "fingerprint" };
const LIST_LIMIT = 12;

class SearchError extends Error {}

const any = (atoms) => (atoms.length === 1 ? atoms[0] : `(${atoms.join(" OR ")})`);

function quoted(name, value) {
  // The filter's strings end at the next quote and keep backslashes as they are.
  if (/["\\]/.test(value)) throw new SearchError(`${name}: a value cannot hold " or \\`);
  return `"${value}"`;
}

function checked(name, pattern, what) {
  return (value) => {
    if (!pattern.test(value)) throw new SearchError(`${name}: ${JSON.stringify(value)} is not ${what}`);
    return value;
  };
}

// `field = v` OR-ed over the values, or, negated, `field != v` for each (AND-ed).
function equals(field, values, negated, format) {
  const atoms = values.map(format);
  return negated ? atoms.map((v) => `${field} != ${v}`) : [any(atoms.map((v) => `${field} = ${v}`))];
}

function oneOf(name, known) {
  return (value) => {
    const word = value.toLowerCase();
    if (!known.includes(word)) throw new SearchError(`${name}: ${JSON.stringify(value)} is not one of ${known.join(", ")}`);
    return word.toUpperCase();
  };
}

function notNegated(name, negated) {
  if (negated) throw new SearchError(`-${name}: ${name} cannot be negated (the filter has no "not" for it)`);
}

// A moment from `2026-12-01` (local midnight) or `2026-12-01T10:00` (local unless it has a zone).
function moment(name, text) {
  if (!DATE.test(text) && !DATE_TIME.test(text)) return null;
  const date = new Date(DATE.test(text) ? `${text}T00:00` : text);
  if (Number.isNaN(date.getTime())) throw new SearchError(`${name}: ${text} is not a date`);
  return date;
}

const FLIPPED = { ">": "<", ">=": "<=", "<": ">", "<=": ">=" };

function times(field, name, values, negated, now) {
  notNegated(name, negated);
  if (values.length !== 1) throw new SearchError(`${name}: takes one value, as ${name}:>1h`);
  const [, operator = "", text] = values[0].match(/^(>=|<=|>|<)?(.*)$/s);
  const relative = text.match(RELATIVE);
  if (relative) {
    if (!operator) throw new SearchError(`${name}: ${text} needs > (longer ago) or < (within), as ${name}:>${text}`);
    const at = new Date(now.getTime() - Number(relative[1]) * UNITS[relative[2]]);
    // `>1h`: more than an hour ago, so before now-1h.
    return [`${field} ${FLIPPED[operator]} "${at.toISOString()}"`];
  }
  const at = moment(name, text);
  if (!at) {
    throw new SearchError(`${name}: ${JSON.stringify(values[0])} is not a time: use >1h, <30m, >7d, ` +
      ">2026-12-01 or <2026-12-01T10:00");
  }
  if (operator) return [`${field} ${operator} "${at.toISOString()}"`];
  if (!DATE.test(text)) throw new SearchError(`${name}: ${text} needs > or <, as ${name}:>${text}`);
  const next = new Date(at);
  next.setDate(next.getDate() + 1);
  return [`${field} >= "${at.toISOString()}"`, `${field} < "${next.toISOString()}"`];
}

// Each qualifier: what it does (the autocomplete's hint) and its terms, AND-ed.
export const QUALIFIERS = {
  state: {
    hint: "in a state (state:failed,cancelled)",
    terms: (name, values, negated) => equals("state", values, negated, oneOf(name, STATES)),
  },
  type: {
    hint: "of a job type",
    terms: (name, values, negated) =>
      equals("type", values, negated, (v) => quoted(name, checked(name, JOB_TYPE, "a job type")(v))),
  },
  tag: {
    hint: "with a tag",
    terms: (name, values, negated) => {
      notNegated(name, negated);
      return [any(values.map((v) => `tags:${quoted(name, checked(name, TAG, "a tag")(v))}`))];
    },
  },
  meta: {
    hint: "with a metadata entry (meta.user:42)",
    terms: (name, values, negated) => {
      const key = name.slice("meta.".length);
      if (!METADATA_KEY.test(key)) throw new SearchError(`${name}: name a metadata key, as meta.user:42`);
      return equals(`metadata.${key}`, values, negated, (v) => quoted(name, v));
    },
  },
  error: {
    hint: "whose error's type or message holds a text",
    terms: (name, values, negated) => {
      notNegated(name, negated);
      return [any(values.map((v) => `error:${quoted(name, v)}`))];
    },
  },
  created: {
    hint: "created before or after a time (>1h: over an hour ago)",
    terms: (name, values, negated, now) => times("create_time", name, values, negated, now),
  },
  finished: {
    hint: "finished before or after a time (<30m: in the last 30 minutes)",
    terms: (name, values, negated, now) => times("finish_time", name, values, negated, now),
  },
  wait: {
    hint: "waiting for a reason (wait:concurrency_limit)",
    terms: (name, values, negated) => {
      notNegated(name, negated);
      return [any(values.map((v) => `wait_reason = ${oneOf(name, WAIT_REASONS)(v)}`))];
    },
  },
  fingerprint: {
    hint: "failed with one cause (a failure group's fingerprint)",
    terms: (name, values, negated) =>
      equals("error_fingerprint", values, negated,
        (v) => quoted(name, checked(name, FINGERPRINT, "a fingerprint (16 hex digits)")(v))),
  },
};

// The query's words, split at spaces outside quotes, with where each starts and ends.
export function words(query) {
  const found = [];
  let start = -1;
  let quote = false;
  for (let i = 0; i <= query.length; i += 1) {
    const c = query[i];
    const space = c === undefined || (!quote && /\s/.test(c));
    if (space) {
      if (start >= 0) found.push({ text: query.slice(start, i), start, end: i });
      start = -1;
      continue;
    }
    if (start < 0) start = i;
    if (c === '"') quote = !quote;
  }
  return found;
}

// `a,"b, c"` -> ["a", "b, c"]: commas outside quotes separate values.
function values(text) {
  const parts = [];
  let current = "";
  let quote = false;
  for (const c of text) {
    if (c === '"') quote = !quote;
    else if (c === "," && !quote) { parts.push(current); current = ""; } else current += c;
  }
  parts.push(current);
  return parts;
}

const qualifierOf = (name) => {
  const [head, ...rest] = name.split(".");
  const canonical = ALIASES[head] || head;
  if (canonical === "meta" && rest.length) return { key: "meta", name: `meta.${rest.join(".")}` };
  return QUALIFIERS[canonical] && canonical !== "meta" ? { key: canonical, name: canonical } : null;
};

function translate(word, now) {
  if ((word.text.match(/"/g) || []).length % 2) throw new SearchError(`${word.text}: a quote is not closed`);
  const match = word.text.match(QUALIFIED);
  if (!match) {
    if (word.text.startsWith("-")) {
      throw new SearchError(`${word.text}: only a qualifier can be negated, as -type:image.build`);
    }
    return { bare: word.text.replaceAll('"', "") };
  }
  const [, minus, written, text] = match;
  const qualifier = qualifierOf(written);
  if (!qualifier) {
    throw new SearchError(`${written}: unknown qualifier; use ${Object.keys(QUALIFIERS)
      .map((q) => (q === "meta" ? "meta.KEY" : q)).join(", ")}`);
  }
  const list = values(text);
  if (list.some((v) => v === "")) throw new SearchError(`${qualifier.name}: needs a value, as ${qualifier.name}:x`);
  return { terms: QUALIFIERS[qualifier.key].terms(qualifier.name, list, minus === "-", now) };
}

// The ListJobs filter a query means, at `now` (relative times become RFC 3339 times).
// `errors`: one message a bad word, naming its qualifier; when there are any, `filter` is not
// to be sent. `jobId`: the query is one word that could be a job's id. `raw`: the query is
// ListJobs' own syntax, passed through as it is.
export function toFilter(query, now) {
  const text = query.trim();
  if (AIP.test(text)) return { filter: text, errors: [], jobId: "", raw: true };
  const terms = [];
  const errors = [];
  const found = words(text);
  for (const word of found) {
    try {
      const translated = translate(word, now);
      if (translated.bare !== undefined) terms.push(`error:${quoted("error", translated.bare)}`);
      else terms.push(...translated.terms);
    } catch (error) {
      if (!(error instanceof SearchError)) throw error;
      errors.push(error.message);
    }
  }
  const single = found.length === 1 && JOB_ID.test(found[0].text) ? found[0].text : "";
  return { filter: errors.length ? "" : terms.join(" AND "), errors, jobId: single, raw: false };
}

// The query the list's older addresses (`?state=FAILED`, `?type=x`, `?filter=...`) mean.
export function queryOfParams(params) {
  const q = params.get("q");
  if (q !== null) return q;
  const state = params.get("state") || "";
  const type = params.get("type") || "";
  const filter = params.get("filter") || "";
  if (filter) {
    return [state && `state = ${state}`, type && `type = "${type}"`, filter].filter(Boolean).join(" AND ");
  }
  return [state && `state:${state.replace(/^STATE_/, "").toLowerCase()}`, type && `type:${type}`]
    .filter(Boolean).join(" ");
}

// The list's address for a query, readable: `#/queues/q?q=state:failed+type:x`.
export function searchHash(listHash, query, sort = "") {
  const readable = (text) => encodeURIComponent(text).replace(/%20/g, "+").replace(/%3A/gi, ":")
    .replace(/%2C/gi, ",");
  const parts = [];
  if (query.trim()) parts.push(`q=${readable(query.trim())}`);
  if (sort) parts.push(`sort=${readable(sort)}`);
  return parts.length ? `${listHash}?${parts.join("&")}` : listHash;
}

// A value as the query writes it: quoted when it holds a space or a comma.
export const written = (value) => (/[\s,]/.test(value) ? `"${value}"` : value);

function timeShortcuts(name, now) {
  const verb = name === "created" ? "created" : "finished";
  const today = new Date(now.getTime() - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 10);
  return [
    [">1h", `${verb} more than an hour ago`], ["<1h", `${verb} within the last hour`],
    ["<24h", `${verb} within the last day`], [">7d", `${verb} more than a week ago`],
    [`>${today}`, `${verb} after today began`], [today, `${verb} today`],
  ];
}

// Values the qualifier `name` may take, each [value, hint]; `sources` holds what the page knows:
// {types, tags, metadata: {key: [values]}, errors, fingerprints}.
function valuesFor(name, negated, sources, now) {
  const not = negated ? "not " : "";
  const qualifier = qualifierOf(name);
  switch (qualifier?.key) {
    case "state": return STATES.map((s) => [s, `jobs ${not}in state ${s.toUpperCase()}`]);
    case "type": return (sources.types || []).map((t) => [t, `jobs ${not}of type ${t}`]);
    case "tag": return (sources.tags || []).map((t) => [t, `jobs tagged ${t}`]);
    case "wait": return WAIT_REASONS.map((w) => [w, `waiting jobs held by ${w.replaceAll("_", " ")}`]);
    case "error": return (sources.errors || []).map((e) => [e, `jobs whose error mentions ${e}`]);
    case "fingerprint": return (sources.fingerprints || []).map((f) => [f, `jobs ${not}failed with cause ${f}`]);
    case "created": case "finished": return timeShortcuts(qualifier.key, now);
    case "meta": {
      const key = qualifier.name.slice("meta.".length);
      return (sources.metadata?.[key] || []).map((v) => [v, `jobs whose ${key} is ${not}${v}`]);
    }
    default: return [];
  }
}

function qualifierNames(sources) {
  const names = Object.entries(QUALIFIERS).map(([name, { hint }]) =>
    [name === "meta" ? "meta." : `${name}:`, `jobs ${hint}`]);
  for (const key of Object.keys(sources.metadata || {})) {
    names.push([`meta.${key}:`, `jobs with metadata ${key}`]);
  }
  return names;
}

// Values that start with what is typed first, then (from two letters on) those that hold it.
function ranked(items, typed) {
  const lower = typed.toLowerCase();
  const starts = items.filter(([value]) => value.toLowerCase().startsWith(lower));
  const holds = lower.length < 2 ? []
    : items.filter(([value]) => !value.toLowerCase().startsWith(lower) && value.toLowerCase().includes(lower));
  return [...starts, ...holds].slice(0, LIST_LIMIT);
}

// What to offer for the word at `cursor`: `{start, end, items}`, each item {label, hint, insert,
// complete}; accepting one puts `insert` in place of query[start:end]. `complete`: the item
// finishes a term (a value), rather than naming a qualifier whose values come next.
export function suggest(query, cursor, sources, now) {
  const none = { start: cursor, end: cursor, items: [] };
  if (AIP.test(query)) return none;
  const word = words(query).find((w) => w.start <= cursor && cursor <= w.end) || { text: "", start: cursor, end: cursor };
  const typed = query.slice(word.start, cursor);
  const match = typed.match(QUALIFIED);
  if (!match) {
    const minus = typed.startsWith("-") ? "-" : "";
    const items = qualifierNames(sources)
      .filter(([name]) => name.startsWith(typed.slice(minus.length).toLowerCase()))
      .map(([name, hint]) => ({ label: `${minus}${name}`, hint, insert: `${minus}${name}`, complete: false }));
    return { start: word.start, end: word.end, items: items.slice(0, LIST_LIMIT) };
  }
  const [, minus, name, text] = match;
  const valueStart = word.start + minus.length + name.length + 1 + text.lastIndexOf(",") + 1;
  const nextComma = query.slice(cursor, word.end).indexOf(",");
  const end = nextComma < 0 ? word.end : cursor + nextComma;
  const typedValue = query.slice(valueStart, cursor).replaceAll('"', "");
  const items = ranked(valuesFor(name, minus === "-", sources, now), typedValue)
    .map(([value, hint]) => ({ label: value, hint, insert: written(value), complete: true }));
  return { start: valueStart, end, items };
}
