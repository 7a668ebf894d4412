// Every call the dashboard makes: the REST API with the signed-in key as a bearer token, and live
// events over SSE with short-lived watch tokens (an EventSource cannot send headers, so the key
// itself never goes in a URL). The key lives in sessionStorage: gone when the tab closes.
const KEY = "jobstream.apiKey";

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.reason = error.reason || "";
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY) || ""; },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
  caller: null,  // GetCaller's answer: {tenant, role, key}
};

let lastAnswerDate = Date.now();

// An event id (a Redis stream id: milliseconds-sequence) from just before the last answer was
// read, by the gateway's clock (its Date header, to the second). A view that reads a list and
// then watches from here misses no event that happened in between; a repeat does no harm.
export const eventIdBeforeLastAnswer = () => `${lastAnswerDate - 2000}-0`;

export async function call(method, path, { body, query, key = session.key } = {}) {
  const url = new URL(`/v1/${path}`, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  lastAnswerDate = Date.parse(answer.headers.get("date")) || Date.now();
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new ApiError(answer.status, data.error || {});
  return data;
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body = {}) => call("POST", path, { body });
export const del = (path) => call("DELETE", path);

// Every page of a List call (`field` names the list in the answer).
export async function listAll(path, field, query = {}) {
  const items = [];
  let pageToken = "";
  do {
    const page = await get(path, { ...query, pageSize: 1000, pageToken });
    items.push(...(page[field] || []));
    pageToken = page.nextPageToken || "";
  } while (pageToken);
  return items;
}

const RANK = { ROLE_VIEWER: 1, ROLE_OPERATOR: 2, ROLE_ADMIN: 3 };

// Whether the signed-in role may do what needs `role` (the server decides anyway).
export function may(role) {
  return (RANK[session.caller?.role] || 0) >= RANK[role];
}

async function watchToken(resource) {
  return call("POST", "watchTokens", { body: { resource } });
}

// Follows `resource` ("queues/q" or "queues/q/jobs/j") with the gateway's helper, which renews
// its token before it expires; when renewal is refused, a fresh token comes from the key.
export async function watch(resource, { onEvent, onEnd, lastEventId } = {}) {
  const first = await watchToken(resource);
  return window.jobstream.watch({
    resource,
    token: first.token,
    expireTime: first.expireTime,
    lastEventId,
    getToken: () => watchToken(resource),
    onEvent,
    onEnd,
    onError: (error) => console.warn("live updates stopped", resource, error),
  });
}
