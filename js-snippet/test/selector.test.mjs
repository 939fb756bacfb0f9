import assert from 'node:assert/strict';
import {test} from 'node:test';
import {metricTarget, selector} from '../src/selector.js';

const el = (nodeName, {id = '', classes = [], parent = null} = {}) => ({nodeType: 1, nodeName, id, classList: classes, parentNode: parent});
const doc = {nodeType: 9};
const body = el('BODY', {parent: el('HTML', {parent: doc})});
const main = el('MAIN', {id: 'content', parent: body});
const hero = el('IMG', {classes: ['hero', 'wide'], parent: el('SECTION', {classes: ['promo'], parent: main})});

test('selector walks up to the nearest id', () => {
  assert.equal(selector(hero), '#content>section.promo>img.hero.wide');
  assert.equal(selector(el('DIV', {parent: body})), 'html>body>div');
  assert.equal(selector(null), '');
  assert.equal(selector({nodeType: 3}), '');
});

test('selector stays within 100 characters', () => {
  let node = body;
  for (let i = 0; i < 50; i++) node = el('DIV', {classes: ['level' + i], parent: node});
  const sel = selector(node);
  assert.ok(sel.length <= 100, sel);
  assert.ok(sel.endsWith('div.level49'));
  assert.equal(selector(el('DIV', {classes: ['x'.repeat(300)]})).length, 100);
});

test('selector survives a node that throws', () => {
  const hostile = {nodeType: 1, get id() { throw new Error('no'); }};
  assert.equal(selector(hostile), '');
});

test('targets: LCP element, INP interaction target, CLS largest shift source', () => {
  const banner = el('DIV', {classes: ['banner'], parent: main});
  assert.equal(metricTarget({name: 'LCP', entries: [{element: banner}, {element: hero}]}), '#content>section.promo>img.hero.wide');
  assert.equal(metricTarget({name: 'INP', entries: [{target: null}, {target: el('BUTTON', {id: 'slow'})}]}), '#slow');
  assert.equal(
    metricTarget({name: 'CLS', entries: [
      {value: 0.01, sources: [{node: hero}]},
      {value: 0.2, sources: [{node: {nodeType: 3}}, {node: banner}]},
    ]}),
    '#content>div.banner',
  );
  assert.equal(metricTarget({name: 'CLS', entries: []}), undefined);
  assert.equal(metricTarget({name: 'LCP', entries: [{element: null}]}), undefined);
  assert.equal(metricTarget({name: 'TTFB', entries: [{}]}), undefined);
});
