// A queue's flow limits (Queue.limits): a line for its overview card, and a panel on its job list
// that shows them and lets an admin change them (UpdateQueue with `updateMask=limits`, which
// replaces them whole: a blank field is no limit).
import { call, get, may } from "./api.js";
import { h, notify } from "./dom.js";

const seconds = (duration) => (duration ? parseFloat(duration) : null);
const rate = (r) => (r?.limit ? `${r.limit} per ${seconds(r.period)}s` : null);

export function limitsSummary(limits = {}) {
  const parts = [
    limits.maxRunning ? `${limits.maxRunning} running` : null,
    limits.maxRunningPerKey ? `${limits.maxRunningPerKey} running per key` : null,
    rate(limits.rateLimit) ? `${rate(limits.rateLimit)}` : null,
    rate(limits.keyRateLimit) ? `${rate(limits.keyRateLimit)} per key` : null,
  ].filter(Boolean);
  return parts.length ? `Limits: ${parts.join(", ")}` : "No limits";
}

function numberInput(id, label, value, { min = 0, step = 1 } = {}) {
  const input = h("input", { id, type: "number", min: String(min), step: String(step), value: value ?? "" });
  return [h("div", { class: "field" }, h("label", { for: id }, label), input), input];
}

function rateInputs(prefix, label, limit) {
  const [jobsField, jobs] = numberInput(`${prefix}-limit`, `${label}: jobs`, limit?.limit, { min: 1 });
  const [periodField, period] = numberInput(`${prefix}-period`, `${label}: per seconds`,
    seconds(limit?.period), { min: 0.001, step: 0.001 });
  const read = () => (jobs.value && period.value
    ? { limit: Number(jobs.value), period: `${Number(period.value)}s` } : undefined);
  return [[jobsField, periodField], read];
}

export async function limitsPanel(queue, view) {
  const path = `queues/${encodeURIComponent(queue)}`;
  const summary = h("summary", {}, "Limits");
  const panel = h("details", { class: "card limits-panel" }, summary);
  let current;
  try {
    current = await get(path);
  } catch (error) {  // a queue nothing was enqueued to yet has no settings either
    if (error.status !== 404) notify(view, `Could not read queue ${queue}: ${error.message}`);
    summary.textContent = limitsSummary();
    return panel;
  }
  const show = (limits) => { summary.textContent = limitsSummary(limits); };
  show(current.limits);
  if (!may("ROLE_ADMIN")) return panel;  // UpdateQueue is an admin's

  const limits = current.limits || {};
  const [maxField, maxRunning] = numberInput("l-max", "Most running (0: no limit)", limits.maxRunning || 0);
  const [keyField, perKey] = numberInput("l-key", "Most running per key (0: no limit)", limits.maxRunningPerKey || 0);
  const [rateFields, readRate] = rateInputs("l-rate", "Rate", limits.rateLimit);
  const [keyRateFields, readKeyRate] = rateInputs("l-krate", "Rate per key", limits.keyRateLimit);
  const form = h("form", { class: "filters", "aria-label": `Limits of queue ${queue}` },
    maxField, keyField, rateFields, keyRateFields, h("button", { type: "submit" }, "Save limits"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const next = {
      maxRunning: Number(maxRunning.value || 0), maxRunningPerKey: Number(perKey.value || 0),
      rateLimit: readRate(), keyRateLimit: readKeyRate(),
    };
    try {
      const updated = await call("PATCH", path, { body: { limits: next }, query: { updateMask: "limits" } });
      show(updated.limits);
      notify(view, `Saved the limits of ${queue}.`, "info");
    } catch (error) {
      notify(view, `Could not save the limits: ${error.message}`);
    }
  });
  panel.append(form);
  return panel;
}
