// The dashboard's shell: sign-in, who is signed in, and the hash router that mounts one view at a
// time (each view returns a function that closes its live streams and timers).
import { ApiError, get, session } from "./api.js";
import { h } from "./dom.js";
import { renderOverview } from "./overview.js";
import { renderJobList } from "./jobs.js";
import { renderJob } from "./job.js";
import { renderFailures } from "./failures.js";
import { renderWorkers } from "./workers.js";
import { renderSchedules } from "./schedules.js";

const main = document.getElementById("main");
const ROLE_NAMES = { ROLE_VIEWER: "viewer", ROLE_OPERATOR: "operator", ROLE_ADMIN: "admin" };
let unmount = () => {};

const ROUTES = [
  [/^#?\/?$/, () => renderOverview],
  [/^#\/queues\/([^/?]+)(?:\?(.*))?$/, () => renderJobList],
  [/^#\/queues\/([^/?]+)\/jobs\/([^/?]+)$/, () => renderJob],
  [/^#\/queues\/([^/?]+)\/failures$/, () => renderFailures],
  [/^#\/jobs(?:\?(.*))?$/, () => (main, query) => renderJobList(main, "-", query)],
  [/^#\/workers$/, () => renderWorkers],
  [/^#\/schedules$/, () => renderSchedules],
];

function signInForm(message) {
  const input = h("input", {
    id: "api-key", type: "password", autocomplete: "off", required: true, spellcheck: "false",
  });
  const form = h("form", { class: "card sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "With an API key (make run keeps its admin key in .data/admin.key). It stays in this tab only."),
    h("label", { for: "api-key" }, "API key"), input,
    message ? h("p", { class: "notice notice-error", role: "alert" }, message) : null,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    session.key = input.value.trim();
    await start();
  });
  main.replaceChildren(form);
  input.focus();
}

function showCaller(caller) {
  document.getElementById("who-text").textContent =
    `${caller.key || "key"} · ${ROLE_NAMES[caller.role] || caller.role} · tenant ${caller.tenant}`;
  document.getElementById("who").hidden = false;
  document.getElementById("nav").hidden = false;
}

let routed = 0;  // counts route() calls: a view that finishes mounting after a newer one began closes

async function route(event) {
  const navigated = event instanceof HashChangeEvent;
  const mine = ++routed;
  unmount();
  unmount = () => {};
  if (!session.caller) return;
  const hash = location.hash || "#/";
  for (const [pattern, view] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    const params = match.slice(1).map((part) => part || "");  // each view decodes its own
    main.replaceChildren();
    const close = (await view()(main, ...params)) || (() => {});
    if (mine !== routed) return close();  // left while it mounted: its streams and timers stop
    unmount = close;
    // The keyboard starts in the new view, unless the view took the focus itself.
    if (navigated && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
    return;
  }
  main.replaceChildren(h("p", { class: "notice notice-error" }, `No page at ${hash}.`));
}

async function start() {
  if (!session.key) return signInForm();
  try {
    session.caller = await get("caller");
  } catch (error) {
    session.key = "";
    session.caller = null;
    const refused = error instanceof ApiError && error.status === 401;
    return signInForm(refused ? "That key was refused." : `Could not sign in: ${error.message}`);
  }
  showCaller(session.caller);
  await route();
}

document.getElementById("sign-out").addEventListener("click", () => {
  routed += 1;  // a view still mounting closes when it is done
  unmount();
  session.key = "";
  session.caller = null;
  document.getElementById("who").hidden = true;
  document.getElementById("nav").hidden = true;
  signInForm();
});
window.addEventListener("hashchange", route);
start();
