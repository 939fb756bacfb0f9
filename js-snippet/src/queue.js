// @ts-check
// The page's `binome(...)` command queue (README, "Embedding the snippet"). The embedding
// stub pushes each call's arguments onto `binome.q` until the snippet loads;
// then the queue is drained in order and `binome` runs commands at once.

/**
 * @param {any} win a Window
 * @param {(args: IArguments) => void} run
 */
export const installQueue = (win, run) => {
  const queued = (win.binome && win.binome.q) || [];
  win.binome = function () {
    try {
      run(arguments);
    } catch (e) {
      // A bad call must not throw into the page.
    }
  };
  for (const args of queued) win.binome.apply(null, args);
};
