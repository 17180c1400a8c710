// What every interop script shares: the JSON report line, waiting, and closing its clients.

export function line(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(pred, ms = 3000, what = "condition", pollMs = 10) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

// Stop every client for good (no reconnection), best effort: the process exits right after.
export function closeAll(sockets) {
  for (const s of sockets) {
    try {
      s.io.reconnection(false);
      s.disconnect();
    } catch {
      // nothing left to do for this one
    }
  }
}
