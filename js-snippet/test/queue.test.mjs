import assert from 'node:assert/strict';
import {test} from 'node:test';
import {installQueue} from '../src/queue.js';

test('queued commands run in order, later calls run at once', () => {
  const win = {};
  // The embedding stub of the README's "Embedding the snippet".
  win.binome = function () { (win.binome.q = win.binome.q || []).push(arguments); };
  win.binome('dim', 'page_type', 'landing');
  win.binome('consent', 'marketing');
  const seen = [];
  installQueue(win, (args) => seen.push([...args]));
  assert.deepEqual(seen, [['dim', 'page_type', 'landing'], ['consent', 'marketing']]);
  assert.equal(win.binome.q, undefined);
  win.binome('conversion', 'purchase', 49.9, 'EUR');
  assert.deepEqual(seen.at(-1), ['conversion', 'purchase', 49.9, 'EUR']);
});

test('works without the stub', () => {
  const win = {};
  const seen = [];
  installQueue(win, (args) => seen.push([...args]));
  win.binome('dim', 'a', 'b');
  assert.deepEqual(seen, [['dim', 'a', 'b']]);
});
