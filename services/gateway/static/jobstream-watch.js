// jobstream-watch.js: follow one job or queue from a browser page, live, for as long as the page
// wants, across watch-token expiry, dropped connections and a lagging stream. Served by the
// gateway at /js/jobstream-watch.js (no build step, no dependencies):
//
//   <script src="https://jobs.example.com/js/jobstream-watch.js"></script>
//   const watch = jobstream.watch({
//     gateway: "https://jobs.example.com",      // omit on the gateway's own origin
//     resource: "queues/default/jobs/render-1",  // or "queues/default"
//     token,                                     // a watch token your server asked for
//     getToken: async () => (await fetch("/my-app/watch-token?job=render-1")).json(),  // optional
//     onEvent: (type, data, id) => { ... },      // state_changed, progress, log, ...
//     onEnd: (finishedJob) => { ... },           // a job's stream: after the event that ends it
//     onError: (error) => { ... },               // gave up: the error JSON ({code, status, reason, message})
//   });
//   watch.close();
//
// Why: an EventSource cannot send headers, so the URL carries a short-lived watch token, and the
// stream ends when the token expires. An EventSource left alone would then reconnect with the
// expired token, get a 401 and close for good. This helper renews the token itself before it
// expires (POST /v1/watchTokens with the token as its credential: the scheduler hands out the
// successor for the same resource, up to the session's limit) and reopens the stream after the
// last event it received (`lastEventId`), so no event is lost or repeated. When renewal is
// refused (the session is over, the key was revoked), `getToken` (if given) asks your server for
// a fresh token; without it, or when that fails too, `onError` is called once and it stops.
"use strict";

(function (global) {
  const EVENT_TYPES = ["state_changed", "progress", "log", "cancel_requested", "reset", "lagged",
                       "error"];
  const RENEW_AT = 0.7;      // renew after this share of the token's lifetime
  const RETRY_MS = 1000;     // after a dropped connection the browser retries on its own; we wait
                             // this long before we reopen a source the browser closed for good

  function watch(options) {
    const gateway = (options.gateway || "").replace(/\/$/, "");
    const resource = options.resource;
    const onEvent = options.onEvent || (() => {});
    const onEnd = options.onEnd || (() => {});
    const onError = options.onError || (() => {});
    let token = options.token;
    let expireMs = null;
    let lastEventId = options.lastEventId || "";
    let source = null;
    let renewTimer = null;
    let stopped = false;
    let unreachable = 0;  // renewals in a row that found no gateway

    function url() {
      const query = new URLSearchParams({ access_token: token });
      if (lastEventId) query.set("lastEventId", lastEventId);
      return `${gateway}/v1/${resource}:watch?${query}`;
    }

    function stop() {
      stopped = true;
      clearTimeout(renewTimer);
      if (source) source.close();
      source = null;
    }

    function fail(error) {
      if (stopped) return;
      stop();
      onError(error);
    }

    function open() {
      if (stopped) return;
      if (source) source.close();
      const current = new EventSource(url());
      source = current;
      current.onerror = (event) => {
        if (event instanceof MessageEvent || current !== source) return;
        // The browser reconnects by itself (with Last-Event-ID) unless the answer was not an
        // event stream, such as the 401 of an expired token: then renew and reopen.
        if (current.readyState === EventSource.CLOSED) {
          setTimeout(() => current === source && refresh(), RETRY_MS);
        }
      };
      for (const type of EVENT_TYPES) {
        current.addEventListener(type, (event) => {
          if (!(event instanceof MessageEvent) || current !== source) return;
          const data = JSON.parse(event.data);
          if (type === "error") {
            const error = data.error || data;
            if (error.reason === "CREDENTIAL_EXPIRED") refresh();
            else fail(error);
            return;
          }
          if (type === "lagged") {  // the stream fell behind: reopen from where the server says
            lastEventId = data.lastEventId || lastEventId;
            open();
            return;
          }
          if (event.lastEventId) lastEventId = event.lastEventId;
          onEvent(type, data, event.lastEventId);
          if (data.finishedJob) {
            stop();
            onEnd(data.finishedJob);
          }
        });
      }
    }

    async function renewed() {
      const answer = await fetch(`${gateway}/v1/watchTokens`, {
        method: "POST",
        headers: { "Authorization": `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ resource }),
      });
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) throw body.error || { code: answer.status, message: answer.statusText };
      return body;
    }

    async function refresh() {
      if (stopped) return;
      clearTimeout(renewTimer);
      let next = null;
      try {
        next = await renewed();
        unreachable = 0;
      } catch (refused) {
        if (refused instanceof TypeError) {  // no answer at all (a restart): try again, later
          unreachable += 1;
          renewTimer = setTimeout(refresh, Math.min(RETRY_MS * 2 ** unreachable, 30_000));
          return;
        }
        if (!options.getToken) return fail(refused);
        try {
          next = await options.getToken();
        } catch (error) {
          return fail(error && error.code ? error : { code: 0, message: String(error) });
        }
      }
      if (stopped) return;
      use(next);
      open();
    }

    function use(issued) {
      token = issued.token;
      expireMs = issued.expireTime ? Date.parse(issued.expireTime) : null;
      clearTimeout(renewTimer);
      if (expireMs !== null) {
        const wait = Math.max(0, (expireMs - Date.now()) * RENEW_AT);
        renewTimer = setTimeout(refresh, wait);
      }
    }

    use({ token, expireTime: options.expireTime });
    if (expireMs === null) renewTimer = setTimeout(refresh, 30_000);  // unknown expiry: 60 s tokens
    open();
    return {
      close: stop,
      get lastEventId() { return lastEventId; },
      get token() { return token; },
    };
  }

  global.jobstream = Object.assign(global.jobstream || {}, { watch });
})(typeof window !== "undefined" ? window : globalThis);
