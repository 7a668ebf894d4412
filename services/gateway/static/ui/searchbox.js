// The job list's search box as a WAI-ARIA 1.2 combobox (an input with a listbox popup): it
// offers search.js's suggestions for the word under the cursor; ArrowDown/ArrowUp move through
// them, Enter or Tab (or a click) accepts one, Escape closes the list. Accepting a value that
// completes a term with Enter (or a click) also runs the search.
import { get, listAll } from "./api.js";
import { h } from "./dom.js";
import { suggest } from "./search.js";

const typesByQueue = new Map();  // queue -> Promise of its job types, read once per page load

// The job types a queue's suggestions name: those its recent windows counted (GetQueueStats)
// and those its live workers run (ListWorkers); for `-`, every worker's.
export function jobTypesOf(queue) {
  if (!typesByQueue.has(queue)) {
    const stats = queue === "-" ? Promise.resolve({}) : get(`queues/${encodeURIComponent(queue)}/stats`);
    const workers = listAll("workers", "workers");
    typesByQueue.set(queue, Promise.allSettled([stats, workers]).then(([counted, listed]) => {
      const types = new Set();
      for (const window of counted.value?.windows || []) {
        for (const stat of window.types || []) types.add(stat.type);
      }
      for (const worker of listed.value || []) {
        if (queue === "-" || (worker.queues || []).includes(queue)) for (const t of worker.jobTypes || []) types.add(t);
      }
      return [...types].sort();
    }));
  }
  return typesByQueue.get(queue);
}

// What the jobs on the page show: their tags, metadata, error types and fingerprints.
export function sourcesOfJobs(jobs, types) {
  const tags = new Set();
  const metadata = {};
  const errors = new Set();
  const fingerprints = new Set();
  for (const job of jobs) {
    for (const tag of job.tags || []) tags.add(tag);
    for (const [key, value] of Object.entries(job.metadata || {})) {
      (metadata[key] ||= new Set()).add(value);
    }
    if (job.error?.type) errors.add(job.error.type);
    if (job.error?.fingerprint) fingerprints.add(job.error.fingerprint);
  }
  const sorted = (set) => [...set].sort();
  return {
    types: sorted(new Set([...types, ...jobs.map((job) => job.type)])),
    tags: sorted(tags),
    metadata: Object.fromEntries(Object.entries(metadata).map(([key, set]) => [key, sorted(set)])),
    errors: sorted(errors),
    fingerprints: sorted(fingerprints),
  };
}

// The combobox over `input`; `sources()` answers what to suggest from, `onSearch()` runs the
// query in the input.
export function searchCombobox(input, { sources, onSearch }) {
  const listId = `${input.id}-suggestions`;
  const list = h("ul", { id: listId, role: "listbox", class: "suggestions", "aria-label": "Suggestions", hidden: true });
  Object.entries({
    role: "combobox", "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": listId,
    autocomplete: "off", spellcheck: "false",
  }).forEach(([name, value]) => input.setAttribute(name, value));
  let offer = { start: 0, end: 0, items: [] };
  let active = -1;

  function close() {
    list.hidden = true;
    active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    active = index;
    list.querySelectorAll("[role=option]").forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    if (index < 0) return input.removeAttribute("aria-activedescendant");
    const option = list.children[index];
    input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  function open() {
    offer = suggest(input.value, input.selectionStart ?? input.value.length, sources(), new Date());
    if (!offer.items.length) return close();
    list.replaceChildren(...offer.items.map((item, i) => h("li", {
      id: `${listId}-${i}`, role: "option", "aria-selected": "false", dataset: { value: item.insert },
      onmousedown: (event) => event.preventDefault(),  // the input keeps the focus
      onclick: () => accept(i, true),
    }, h("span", { class: "suggestion-label" }, item.label), " ", h("span", { class: "suggestion-hint" }, item.hint))));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(-1);
  }

  function accept(index, search) {
    const item = offer.items[index];
    const after = input.value.slice(offer.end);
    const spacer = item.complete && !after.startsWith(" ") ? " " : "";
    input.value = `${input.value.slice(0, offer.start)}${item.insert}${spacer}${after}`;
    const cursor = offer.start + item.insert.length + spacer.length;
    input.setSelectionRange(cursor, cursor);
    if (!item.complete) return open();  // a qualifier: its values next
    close();
    if (search) onSearch();
  }

  input.addEventListener("input", open);
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (event) => {
    const count = list.hidden ? 0 : offer.items.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!count) return open();
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((Math.max(active, step > 0 ? -1 : 0) + step + count) % count);  // wraps around
    } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
      event.preventDefault();
      accept(active, event.key === "Enter");
    } else if (event.key === "Escape" && count) {
      event.preventDefault();
      close();
    }
  });
  return list;
}
