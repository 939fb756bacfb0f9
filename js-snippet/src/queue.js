// @ts-check
// The page's `binome(...)` command queue (README, "Embedding the snippet"). The embedding
// stub pushes each call's arguments onto `binome.q` until the snippet loads;
// then the queue is drained in order and `binome` runs commands at once.

/**
 * @param {any} win a Window
 * @param {(args: any[]) => void} run called with each command's arguments;
 *   it must not throw (index.js guards it: a bad call must not throw into the page)
 */
export const installQueue = (win, run) => {
  const queued = win.binome?.q || [];
  win.binome = (/** @type {any[]} */ ...args) => run(args);
  for (const args of queued) run(args);
};
