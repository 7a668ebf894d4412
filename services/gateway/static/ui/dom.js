// Small helpers every view shares: building elements (text is always set as text, never parsed
// as HTML), formatting times and states, the progress bar and the confirmation dialog.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

export const shortState = (state) => (state || "").replace(/^(STATE|KIND|OUTCOME|REASON)_/, "");
export const jobId = (name) => name.split("/").pop();

// A job's page from its name (`queues/{queue}/jobs/{job}`).
export function jobHref(name) {
  const [, queue, , id] = name.split("/");
  return `#/queues/${encodeURIComponent(queue)}/jobs/${encodeURIComponent(id)}`;
}

export function stateBadge(state) {
  const text = shortState(state);
  return h("span", { class: `state state-${text.toLowerCase()}` }, text);
}

export function time(value) {
  if (!value) return "—";
  const date = new Date(value);
  return h("time", { datetime: value, title: value }, date.toLocaleString());
}

// "1h 2m", "3.4s", "120 ms" from milliseconds.
export function humanMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${Math.floor(seconds % 60)}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

// A protobuf JSON duration ("1.5s") in milliseconds.
export const durationMs = (text) => (text ? parseFloat(text) * 1000 : null);

// A job's run time: of its last attempt, so far when it is running.
export function jobDurationMs(job) {
  if (!job.startTime) return null;
  const end = job.state === "STATE_RUNNING" ? Date.now() : Date.parse(job.finishTime || job.updateTime);
  return end - Date.parse(job.startTime);
}

export function percentOf(progress) {
  if (!progress) return 0;
  if (Number(progress.total) > 0) return Math.round((100 * Number(progress.current)) / Number(progress.total));
  return progress.percent || 0;
}

// A job's progress bar, or a dash until its handler reports progress.
export function progressBar(progress, label) {
  if (!progress?.updateTime) return h("span", { class: "no-progress", title: "no progress reported" }, "—");
  const percent = percentOf(progress);
  const bar = h("progress", { max: "100", value: String(percent), "aria-label": label });
  return h("span", { class: "progress" }, bar, h("span", { class: "percent" }, `${percent}%`));
}

export function setProgress(container, progress) {
  const percent = percentOf(progress);
  container.querySelector("progress").value = percent;
  container.querySelector(".percent").textContent = `${percent}%`;
}

export const WAITING = new Set(["STATE_SCHEDULED", "STATE_BLOCKED", "STATE_QUEUED"]);
export const FINISHED = new Set(["STATE_SUCCEEDED", "STATE_FAILED", "STATE_CANCELLED"]);

export function pretty(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// Asks in the page's <dialog> (keyboard and screen readers handle it natively); true on Confirm.
export function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  });
}

// Shows an error (or a notice) at the top of the view, announced to screen readers.
export function notify(view, message, kind = "error") {
  let box = view.querySelector(".notice");
  if (!box) {
    box = h("p", { class: "notice", role: "status", "aria-live": "polite" });
    view.prepend(box);
  }
  box.className = `notice notice-${kind}`;
  box.textContent = message;
}

// Runs `fn` once, `ms` after the first of a burst of calls: a steady stream of events becomes
// one refresh per `ms`, and the last event of a burst is never left unapplied.
export function coalesce(fn, ms) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}
