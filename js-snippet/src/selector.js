// @ts-check
// The attribution target of a metric as a CSS selector, built from the
// standard web-vitals build's `entries`: web-vitals' attribution build would
// add about 2.6 kB gzipped, over the snippet's 5 kB budget, for much more
// than the one selector per metric that Binome stores.

/**
 * A selector like web-vitals' getSelector: `#id` or `tag.class.class`, joined
 * by '>' up to the nearest id, at most ~100 characters.
 * @param {any} node
 * @returns {string}
 */
export const selector = (node) => {
  let sel = '';
  try {
    while (node?.nodeType == 1) {
      const part = node.id ? '#' + node.id : [node.nodeName.toLowerCase(), ...node.classList].join('.');
      if (sel.length + part.length > 99) return sel || part.slice(0, 100);
      sel = sel ? part + '>' + sel : part;
      if (node.id) break;
      node = node.parentNode;
    }
  } catch (e) {
    // A node from a closed shadow root or another realm: no target.
  }
  return sel;
};

/**
 * The element a metric points at: LCP's largest element, INP's interaction
 * target, CLS's largest shift source (as web-vitals' attribution build picks
 * them). Nothing for FCP and TTFB.
 * @param {{name: string, entries: any[]}} metric
 * @returns {string | undefined}
 */
export const metricTarget = ({name, entries}) => {
  let node;
  if (name == 'LCP') node = entries.at(-1)?.element;
  if (name == 'INP') node = entries.find((e) => e.target)?.target;
  if (name == 'CLS' && entries.length) {
    const sources = entries.reduce((a, b) => (a.value > b.value ? a : b)).sources || [];
    node = sources.find((s) => s.node?.nodeType == 1)?.node;
  }
  return selector(node) || undefined;
};
