// When a long-running script (the quickstart) should stop: Ctrl-C (SIGINT), SIGTERM, SIGHUP
// (its terminal closed), or its parent gone without a word. `npm run` forwards only SIGINT and
// SIGTERM to its child, so a SIGHUP or SIGKILL sent to npm alone leaves the script running,
// re-parented, with its Envoy still holding the port; the parent check covers those.

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Calls `stop` with the reason each time a stop is asked for (the caller decides what a second
 * request means); returns a function that stops listening. */
export function onStopRequest(stop: (reason: string) => void, parentPollMs = 250): () => void {
  const handlers = SIGNALS.map((signal) => {
    const handler = () => stop(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  // Re-parenting changes process.ppid (to 1, or to a subreaper); there is no event for it.
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) stop('parent exited');
  }, parentPollMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
