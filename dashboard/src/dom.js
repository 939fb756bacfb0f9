// Building the page with the DOM, never innerHTML: channel and campaign names
// come from visitors' URLs and are shown as text only.

/**
 * h('td', {class: 'num', dataset: {value: 3}}, 'text', child)
 * @param {string} tag
 * @param {Record<string, any>|null} [attrs]
 * @param {...(Node|string|number|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export const h = (tag, attrs, ...children) => {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') for (const [k, v] of Object.entries(value)) { if (v != null) el.dataset[k] = String(v); }
    else if (name === 'style') Object.assign(el.style, value); // CSSOM: allowed by the page's CSP
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child == null || child === false) continue;
    el.append(typeof child === 'object' ? child : String(child));
  }
  return el;
};

/** @param {string} id */
export const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {Element} el @param {...(Node|string)} children */
export const fill = (el, ...children) => el.replaceChildren(...children);
