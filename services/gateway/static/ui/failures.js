// A queue's failures grouped by error fingerprint (ListFailureGroups): count, error type, a
// sample message and job, first and last failure, newest or biggest first, a page at a time.
// Each group links to its jobs (the group's own `filter` in the job list) and can be retried or
// deleted whole through a bulk operation: counted, confirmed, paced and followed.
import { eventIdBeforeLastAnswer, get, may, watch } from "./api.js";
import { coalesce, h, jobHref, notify, time } from "./dom.js";
import { bulkSummary, runBulk } from "./bulk.js";

const PAGE_SIZE = 25;
const ORDERS = [["last_failure_time desc", "newest failure first"], ["count desc", "biggest first"]];
const GROUP_ACTIONS = [
  ["Retry group", "ACTION_RETRY", "ROLE_OPERATOR"],
  ["Delete group", "ACTION_DELETE", "ROLE_ADMIN"],
];

export async function renderFailures(main, encodedQueue) {
  const queue = decodeURIComponent(encodedQueue);
  const base = `queues/${encodeURIComponent(queue)}`;
  const tokens = [""];
  let nextToken = "";
  let closed = false;

  const order = h("select", { id: "f-order" }, ORDERS.map(([value, label]) => h("option", { value }, label)));
  const tbody = h("tbody");
  const table = h("table", { class: "failures" },
    h("caption", { class: "visually-hidden" }, `Failures of queue ${queue}, grouped by cause`),
    h("thead", {}, h("tr", {}, ["Error", "Sample message", "Count", "First failure", "Last failure", "Jobs", "Actions"]
      .map((c) => h("th", { scope: "col" }, c)))),
    tbody);
  const progress = h("p", { class: "bulk-progress", role: "status", "aria-live": "polite" });
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const view = h("section", { class: "failures-view", "aria-labelledby": "failures-title" },
    h("h1", { id: "failures-title" }, h("a", { href: "#/" }, "Queues"), " / ",
      h("a", { href: `#/${base}` }, queue), " / failures"),
    h("div", { class: "filters" }, h("div", { class: "field" }, h("label", { for: "f-order" }, "Order"), order)),
    progress, h("div", { class: "scroll" }, table),
    h("nav", { class: "pages", "aria-label": "Pages" }, previous, next));
  main.append(view);

  async function act(group, action, label) {
    try {
      const finished = await runBulk(queue, action, group.filter, {
        what: `the ${group.errorType || "untyped"} failures of queue ${queue}`,
        onProgress: (operation) => { progress.textContent = bulkSummary(operation); },
        isClosed: () => closed,
      });
      if (finished) await load();
    } catch (error) {
      notify(view, `${label}: ${error.message}`);
    }
  }

  function row(group) {
    const jobs = `#/${base}?${new URLSearchParams({ filter: group.filter })}`;
    const buttons = GROUP_ACTIONS.filter(([, , role]) => may(role)).map(([label, action]) =>
      h("button", {
        type: "button", class: action === "ACTION_DELETE" ? "danger" : "",
        "aria-label": `${label} ${group.errorType}`, onclick: () => act(group, action, label),
      }, label));
    return h("tr", { dataset: { fingerprint: group.fingerprint } },
      h("td", { class: "error-type" }, group.errorType || "—"),
      h("td", { class: "error-message" }, group.sampleMessage || ""),
      h("td", { class: "count" }, String(group.count || 0)),
      h("td", {}, time(group.firstFailureTime)),
      h("td", {}, time(group.lastFailureTime)),
      h("td", {},
        h("a", { href: jobs, "aria-label": `Jobs of ${group.errorType}` }, "all jobs"), " · ",
        group.sampleJob
          ? h("a", { href: jobHref(group.sampleJob),
            "aria-label": `Sample job of ${group.errorType}` }, "sample")
          : null),
      h("td", { class: "actions" }, buttons));
  }

  async function load() {
    try {
      const page = await get(`${base}/failureGroups`, {
        orderBy: order.value, pageSize: PAGE_SIZE, pageToken: tokens[tokens.length - 1],
      });
      if (closed) return;
      const groups = page.failureGroups || [];
      tbody.replaceChildren(...groups.map(row));
      if (!groups.length) tbody.append(h("tr", {}, h("td", { colspan: "7" }, "No failed jobs.")));
      nextToken = page.nextPageToken || "";
      next.disabled = !nextToken;
      previous.disabled = tokens.length === 1;
    } catch (error) {
      notify(view, `Could not list the failures: ${error.message}`);
    }
  }
  const reload = coalesce(load, 1000);
  order.addEventListener("change", () => { tokens.length = 1; load(); });
  next.addEventListener("click", () => { tokens.push(nextToken); load(); });
  previous.addEventListener("click", () => { tokens.pop(); load(); });

  await load();
  // A job that fails, or a failed one retried or deleted, changes the groups.
  const stream = await watch(base, {
    lastEventId: eventIdBeforeLastAnswer(),
    onEvent: (type) => { if (type === "state_changed") reload(); },
  }).catch(() => null);
  if (closed) stream?.close();
  return () => {
    closed = true;
    stream?.close();
  };
}
