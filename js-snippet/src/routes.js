// @ts-check
// Route changes of single-page applications (issue 22; README, "Embedding the
// snippet", data-spa): a change of location.pathname by the History API, by
// popstate, and with data-spa="hash" a change of
// location.hash too. Each one ends the current page view and starts another.

/**
 * Calls `onRoute(previousHref)` after each route change, with the URL the
 * previous route began with: a campaign the page strips from the URL by
 * replaceState stays with the landing page (issue 22). The History API
 * methods are wrapped, not replaced: the page's own call runs first and any
 * exception it throws still reaches the page.
 * @param {any} win a Window
 * @param {string | undefined} mode the script tag's data-spa: 'off', 'hash' or anything else ('on')
 * @param {(previousHref: string) => void} onRoute
 */
export const watchRoutes = (win, mode, onRoute) => {
  if (mode == 'off') return;
  const loc = win.location;
  const key = () => loc.pathname + (mode == 'hash' ? loc.hash : '');
  let last = key();
  let href = loc.href;
  const check = () => {
    if (key() != last) {
      last = key();
      const previous = href;
      href = loc.href;
      onRoute(previous);
    }
  };
  const history = win.history;
  for (const name of ['pushState', 'replaceState']) {
    const original = history[name];
    history[name] = function () {
      const result = original.apply(this, arguments);
      check();
      return result;
    };
  }
  win.addEventListener('popstate', check);
  if (mode == 'hash') win.addEventListener('hashchange', check);
};
