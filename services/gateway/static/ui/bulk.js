// A bulk operation the way a person should meet one: counted first (a dry run), confirmed with
// that count, then run paced with the count as `expectedCount`, so the server refuses it when the
// filter no longer matches what was confirmed; followed until it ends (GetBulkOperation).
import { get, post } from "./api.js";
import { confirmAction } from "./dom.js";

const POLL_MS = 1000;
const VERBS = { ACTION_RETRY: "Retry", ACTION_CANCEL: "Cancel", ACTION_DELETE: "Delete" };

export const bulkSummary = (operation) =>
  `${VERBS[operation.action] || operation.action}: ${operation.affectedCount || 0} of ` +
  `${operation.matchedCount || 0} done, ${operation.skippedCount || 0} skipped` +
  `${operation.state === "STATE_RUNNING" ? "…" : ` (${operation.state.replace("STATE_", "").toLowerCase()})`}`;

// Runs `action` on every job of `queue` that `filter` matches, after asking `what` (a phrase:
// "the failures of this group"). Calls `onProgress` with the operation as it moves; answers the
// finished operation, or null when the person kept the jobs. `isClosed` stops
// the following when the view goes away.
export async function runBulk(queue, action, filter, { what, onProgress, isClosed = () => false }) {
  const parent = `queues/${encodeURIComponent(queue)}/bulkOperations`;
  const bulkOperation = { action, filter };
  const counted = await post(parent, { bulkOperation, dryRun: true });
  const count = Number(counted.matchedCount || 0);
  const verb = VERBS[action];
  if (!count) throw new Error(`no job matches any more: nothing to ${verb.toLowerCase()}`);
  if (!(await confirmAction(`${verb} ${count} job${count === 1 ? "" : "s"}: ${what}?`))) return null;
  let operation = await post(parent, { bulkOperation, expectedCount: String(count) });
  onProgress?.(operation);
  while (operation.state === "STATE_RUNNING" && !isClosed()) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    operation = await get(operation.name);
    onProgress?.(operation);
  }
  return operation;
}
