// A queue's jobs: ListJobs a page at a time (cursor pagination), filtered by one search box
// (qualifiers, search.js, translated into ListJobs' AIP-160 filter), sorted (`order_by`); rows can be selected and
// retried, cancelled or deleted, or (select all matching) every job the filter matches, through
// a counted, confirmed and paced bulk operation. WatchQueue keeps the page live: progress moves in place, a
// changed job is read again, and a new job shows up on the first page.
import { del, eventIdBeforeLastAnswer, get, listAll, may, post, watch } from "./api.js";
import { bulkSummary, runBulk } from "./bulk.js";
import { limitsPanel } from "./limits.js";
import { queryOfParams, searchHash, toFilter, written } from "./search.js";
import { jobTypesOf, searchCombobox, sourcesOfJobs } from "./searchbox.js";
import {
  WAITING, confirmAction, coalesce, h, humanMs, jobDurationMs, jobHref, jobId, notify, progressBar,
  setProgress, stateBadge, time,
} from "./dom.js";

const PAGE_SIZE = 25;
const SORTS = [
  ["", "newest first"], ["create_time asc", "oldest first"], ["start_time desc", "started last"],
  ["duration desc", "longest running"], ["finish_time desc", "finished last"],
  ["priority desc", "highest priority"],
];
// The person a job is for, as its metadata names them (the first of these keys it has).
const USER_KEYS = ["user", "tenant", "user_id"];
// A search moves to its own address, which mounts the list again: the new list takes the focus
// back to its search box, so one can refine the query without reaching for it again.
let focusSearchOnMount = false;

// At phone width the rows are laid out as cards (dashboard.css), and a table whose rows are not
// displayed as table rows loses its table semantics in some browsers: the roles keep them.
function withCellRoles(tr) {
  tr.setAttribute("role", "row");
  for (const cell of tr.children) cell.setAttribute("role", cell.tagName === "TH" ? "columnheader" : "cell");
  return tr;
}

function field(id, label, control) {
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

export async function renderJobList(main, encodedQueue, query) {
  const queue = decodeURIComponent(encodedQueue);
  const params = new URLSearchParams(query);
  const criteria = { query: queryOfParams(params), sort: params.get("sort") || "" };
  // Relative times (`created:<1h`) become absolute when the search runs, and stay so while its
  // pages are read (a page token holds its filter).
  let search = toFilter(criteria.query, new Date());
  // `-`: every queue of the tenant (`#/jobs`), newest first, live through WatchQueue on
  // `queues/-`; no sort or bulk operation spans queues.
  const allQueues = queue === "-";
  const base = `queues/${encodeURIComponent(queue)}`;
  const listHash = allQueues ? "#/jobs" : `#/${base}`;
  const selected = new Set();
  const rows = new Map();  // job name -> {row, job}
  const tokens = [""];  // page tokens of the pages up to the current one
  let nextToken = "";
  let closed = false;

  const sortSelect = h("select", {}, SORTS.map(([value, label]) =>
    h("option", { value, selected: value === criteria.sort }, label)));
  const searchInput = h("input", {
    type: "text", value: criteria.query, placeholder: 'state:failed type:image.build error:"timed out" created:>1h',
    "aria-describedby": "search-filter search-help",
  });
  const searchErrors = h("ul", { class: "search-errors", role: "alert" });
  const translated = h("code");
  const form = h("form", { class: "filters", role: "search", "aria-label": "Search jobs" },
    field("f-search", "Search", searchInput), allQueues ? null : field("f-sort", "Sort", sortSelect),
    h("button", { type: "submit" }, "Apply"), searchErrors,
    h("p", { id: "search-filter", class: "help translated" }, "ListJobs filter: ", translated),
    h("p", { id: "search-help", class: "help" }, "Qualifiers: state: type: tag: meta.KEY: error: created: ",
      "finished: wait: fingerprint:, values OR-ed with commas, - negates, other words search error text; ",
      "or ListJobs' own syntax (state = FAILED AND tags:\"x\")."));
  const found = h("p", { class: "found", "aria-live": "polite", hidden: true });

  const showFilter = ({ errors, filter }) => {
    translated.textContent = errors.length ? "—" : filter || "(none: every job)";
  };
  function showSearch() {
    showFilter(search);
    searchErrors.replaceChildren(...search.errors.map((message) => h("li", {}, message)));
  }
  function runSearch() {
    search = toFilter(searchInput.value, new Date());
    showSearch();
    if (search.errors.length) return;  // named under the box; nothing is sent
    criteria.query = searchInput.value.trim();
    const hash = searchHash(listHash, criteria.query, sortSelect.value);
    if (location.hash !== hash) {
      focusSearchOnMount = true;
      location.hash = hash;
    } else { tokens.length = 1; findJob(search.jobId).catch(() => {}); load(); }  // again, from page 1
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    runSearch();
  });
  searchInput.addEventListener("input", () => showFilter(toFilter(searchInput.value, new Date())));
  let knownTypes = [];
  jobTypesOf(queue).then((types) => { knownTypes = types; });
  searchInput.classList.add("search-input");
  searchInput.after(searchCombobox(searchInput, {
    sources: () => sourcesOfJobs([...rows.values()].map(({ job }) => job), knownTypes),
    onSearch: runSearch,
  }));

  const selectAll = h("input", { type: "checkbox", "aria-label": "Select every job on this page" });
  const tbody = h("tbody");
  const table = h("table", { class: "jobs", role: "table" },
    h("caption", { class: "visually-hidden" }, allQueues ? "Jobs of every queue" : `Jobs of queue ${queue}`),
    h("thead", {}, withCellRoles(h("tr", {},
      h("th", { scope: "col" }, selectAll),
      ...[["ID"], allQueues ? ["Queue"] : null, ["Type"], ["Status"], ["Progress"], ["User", "user"],
        ["Created", "created"], ["Duration"], ["Waiting because", "wait"]]
        .filter(Boolean).map(([c, column]) => h("th", { scope: "col", class: column }, c))))),
    tbody);
  const summary = h("p", { class: "summary", "aria-live": "polite" });
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");
  const actions = h("div", { class: "bulk", role: "group", "aria-label": "Selected jobs" });
  const matchBar = h("p", { class: "match-all", hidden: true, "aria-live": "polite" });
  const bulkProgress = h("p", { class: "bulk-progress", role: "status", "aria-live": "polite" });
  let matching = 0;  // when every matching job is selected: how many the dry run counted
  const view = h("section", { class: "job-list", "aria-labelledby": "jobs-title" },
    h("h1", { id: "jobs-title" }, h("a", { href: "#/" }, "Queues"), " / ", allQueues ? "all queues" : queue),
    h("p", { class: "card-links" }, allQueues ? null : h("a", { href: `${listHash}/failures` }, "Failures by cause")),
    form, found, actions, matchBar, bulkProgress, h("div", { class: "scroll" }, table),
    h("nav", { class: "pages", "aria-label": "Pages" }, previous, summary, next));
  main.append(view);
  if (focusSearchOnMount) {
    focusSearchOnMount = false;
    searchInput.focus();
  }
  if (!allQueues) view.querySelector(".card-links").after(await limitsPanel(queue, view));

  const bulk = [
    ["Retry", "ROLE_OPERATOR", (name) => post(`${name}:retry`), "ACTION_RETRY"],
    ["Cancel", "ROLE_OPERATOR", (name) => post(`${name}:cancel`, { reason: "cancelled from the dashboard" }),
      "ACTION_CANCEL"],
    ["Delete", "ROLE_ADMIN", (name) => del(name), "ACTION_DELETE"],
  ].filter(([, role]) => may(role));

  async function actOnAllMatching(label, action) {
    try {
      await runBulk(queue, action, search.filter, {
        what: "every job this filter matches, on every page",
        onProgress: (operation) => { bulkProgress.textContent = bulkSummary(operation); },
        isClosed: () => closed,
      });
    } catch (error) {
      notify(view, `${label}: ${error.message}`);
    }
    unselectAll();
    await load();
  }

  for (const [label, , act, action] of bulk) {
    actions.append(h("button", {
      type: "button", disabled: true, class: label === "Delete" ? "danger" : "",
      onclick: async () => {
        if (matching) return actOnAllMatching(label, action);
        const names = [...selected];
        if (!(await confirmAction(`${label} ${names.length} job${names.length === 1 ? "" : "s"}?`))) return;
        const results = await Promise.allSettled(names.map(act));
        const failed = results.filter((r) => r.status === "rejected");
        selected.clear();
        notify(view, failed.length
          ? `${label}: ${names.length - failed.length} done, ${failed.length} refused (${failed[0].reason.message})`
          : `${label}: ${names.length} done.`, failed.length ? "error" : "info");
        await load();
      },
    }, `${label} selected`));
  }

  function syncSelection() {
    for (const button of actions.querySelectorAll("button")) button.disabled = selected.size === 0;
    selectAll.checked = rows.size > 0 && [...rows.keys()].every((name) => selected.has(name));
    if (!selectAll.checked) {
      matching = 0;
      matchBar.dataset.offered = "";
    }
    offerAllMatching();
  }

  function unselectAll() {
    matching = 0;
    selected.clear();
    for (const { row } of rows.values()) row.querySelector("input").checked = false;
    syncSelection();
  }

  // The whole page is selected and more jobs match: offer them all, counted by a dry run.
  async function offerAllMatching() {
    const more = !allQueues && bulk.length > 0 && selectAll.checked && nextToken !== "";
    matchBar.hidden = !more;
    if (!more || (!matching && matchBar.dataset.offered)) return;
    matchBar.dataset.offered = matching ? "" : "yes";
    if (matching) {
      matchBar.replaceChildren(`All ${matching} matching jobs are selected. `,
        h("button", { type: "button", onclick: unselectAll }, "Clear selection"));
      return;
    }
    try {
      const counted = await post(`${base}/bulkOperations`,
        { bulkOperation: { action: bulk[0][3], filter: search.filter }, dryRun: true });
      const count = Number(counted.matchedCount || 0);
      matchBar.replaceChildren(`All ${selected.size} jobs on this page are selected. `,
        h("button", {
          type: "button", onclick: () => { matching = count; offerAllMatching(); },
        }, `Select all ${count} matching`));
    } catch (error) {
      notify(view, `Could not count the matching jobs: ${error.message}`);
    }
  }
  selectAll.addEventListener("change", () => {
    for (const name of rows.keys()) {
      if (selectAll.checked) selected.add(name); else selected.delete(name);
    }
    for (const { row } of rows.values()) row.querySelector("input").checked = selectAll.checked;
    syncSelection();
  });

  function row(job) {
    const id = jobId(job.name);
    const jobQueue = job.name.split("/")[1];
    const check = h("input", { type: "checkbox", "aria-label": `Select job ${id}`, checked: selected.has(job.name) });
    check.addEventListener("change", () => {
      if (check.checked) selected.add(job.name); else selected.delete(job.name);
      syncSelection();
    });
    return withCellRoles(h("tr", { dataset: { job: id, state: job.state } },
      h("td", {}, check),
      h("td", { class: "id" }, h("a", { href: jobHref(job.name) }, id)),
      allQueues ? h("td", { class: "queue" }, h("a", { href: `#/queues/${jobQueue}` }, jobQueue)) : null,
      h("td", { class: "type" }, job.type),
      h("td", { class: "status" }, stateBadge(job.state)),
      h("td", { class: "progress-cell" }, progressBar(job.progress, `Progress of ${id}`)),
      h("td", { class: "user" }, userLink(job)),
      h("td", { class: "created" }, time(job.createTime)),
      h("td", { class: "duration" }, humanMs(jobDurationMs(job))),
      h("td", { class: "wait" }, WAITING.has(job.state) ? job.waitReason?.message || "" : "")));
  }

  function userLink(job) {
    const key = USER_KEYS.find((k) => job.metadata?.[k]);
    if (!key) return "";
    const query = `meta.${key}:${written(job.metadata[key])}`;
    return h("a", { href: searchHash(listHash, query), title: `Search ${query}` }, job.metadata[key]);
  }

  // A query that is one word like a job's id: that job, if the queue (or any queue) has it.
  async function findJob(id) {
    found.hidden = true;
    if (!id) return;
    const queues = allQueues ? (await listAll("queues", "queues")).map((q) => q.name) : [base];
    const answers = await Promise.allSettled(queues.map((name) => get(`${name}/jobs/${id}`)));
    const jobs = answers.filter((a) => a.status === "fulfilled").map((a) => a.value);
    if (closed || !jobs.length) return;
    found.replaceChildren("Job with this id: ", ...jobs.map((job) => h("a", { href: jobHref(job.name) },
      `${job.name.replace(/^queues\//, "")} (${job.type}, ${job.state.replace("STATE_", "")})`)));
    found.hidden = false;
  }

  function show(job) {
    const built = row(job);
    const existing = rows.get(job.name);
    if (existing) existing.row.replaceWith(built);
    rows.set(job.name, { row: built, job });
  }

  async function load() {
    if (search.errors.length) {
      tbody.replaceChildren(withCellRoles(h("tr", {}, h("td", { colspan: "10" }, "Correct the search to list jobs."))));
      return;
    }
    try {
      const page = await get(`${base}/jobs`, {
        filter: search.filter, orderBy: criteria.sort, pageSize: PAGE_SIZE,
        pageToken: tokens[tokens.length - 1],
      });
      if (closed) return;
      rows.clear();
      tbody.replaceChildren();
      for (const job of page.jobs || []) {
        const built = row(job);
        rows.set(job.name, { row: built, job });
        tbody.append(built);
      }
      if (!rows.size) tbody.append(withCellRoles(h("tr", {}, h("td", { colspan: allQueues ? "10" : "9" }, "No jobs match."))));
      nextToken = page.nextPageToken || "";
      next.disabled = !nextToken;
      previous.disabled = tokens.length === 1;
      const total = `${page.totalSize || 0}${page.totalSizeEstimated ? " (estimated)" : ""}`;
      summary.textContent = `Page ${tokens.length} · ${total} matching`;
      for (const name of [...selected]) if (!rows.has(name)) selected.delete(name);
      syncSelection();
    } catch (error) {
      notify(view, `Could not list the jobs: ${error.message}`);
    }
  }
  const reload = coalesce(load, 500);
  next.addEventListener("click", () => { matching = 0; tokens.push(nextToken); load(); });
  previous.addEventListener("click", () => { matching = 0; tokens.pop(); load(); });

  async function changed(event) {
    const known = rows.get(event.job);
    if (event.type === "TYPE_RESET") {
      reload();  // events may have been missed (on `queues/-`: a queue found late): read again
    } else if (event.type === "TYPE_PROGRESS" && known) {
      known.job.progress = event.progress;
      const bar = known.row.querySelector(".progress");
      if (bar) setProgress(bar, event.progress); else show(known.job);
    } else if (event.type === "TYPE_STATE_CHANGED" && known) {
      try { show(await get(event.job)); } catch { reload(); }  // gone: deleted
    } else if (event.type === "TYPE_STATE_CHANGED" && tokens.length === 1) {
      reload();  // perhaps a new job, or one that now matches the filter
    }
  }

  showSearch();
  findJob(search.jobId).catch(() => {});  // only a shortcut: the list answers the query anyway
  await load();
  const stream = await watch(base, {  // `queues/-`: every queue's events, on one stream
    lastEventId: eventIdBeforeLastAnswer(), onEvent: (_type, event) => changed(event),
  }).catch(() => null);
  if (closed) stream?.close();
  const ticker = setInterval(() => {  // running jobs' duration so far
    for (const { row: r, job } of rows.values()) {
      if (job.state === "STATE_RUNNING") r.querySelector(".duration").textContent = humanMs(jobDurationMs(job));
    }
  }, 1000);
  return () => {
    closed = true;
    clearInterval(ticker);
    stream?.close();
  };
}
