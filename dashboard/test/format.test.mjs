// Ratings and the writing of figures, in both languages.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {consentShare, daysBetween, formatter, lastDays, rating, split} from '../src/format.js';

test('CrUX ratings: good up to and including the threshold, poor above the second', () => {
  assert.equal(rating(2500, [2500, 4000]), 'good');
  assert.equal(rating(2500.01, [2500, 4000]), 'ni');
  assert.equal(rating(4000, [2500, 4000]), 'ni');
  assert.equal(rating(4000.5, [2500, 4000]), 'poor');
  assert.equal(rating(0.1, [0.1, 0.25]), 'good');
  assert.equal(rating(null, [0.1, 0.25]), null);
});

test('English figures', () => {
  const f = formatter('en-US');
  assert.equal(f.duration(2140.5), '2.14\u00a0s');
  assert.equal(f.duration(999.4), '999\u00a0ms');
  assert.equal(f.duration(12345), '12.35\u00a0s');
  assert.equal(f.cls(0.1155), '0.116'); // half away from zero, as Intl does
  assert.equal(f.duration(3175), '3.18\u00a0s'); // on "3.175", not on 3.17499999... (the binary 3175 / 1000)
  assert.equal(f.percent(62.25), '62.3%');
  assert.equal(f.percent(null), '–');
  assert.equal(f.count(1234567), '1,234,567');
  assert.equal(f.money(3070598.2), '3,070,598.20');
  assert.equal(f.delta('lcp', -120), '−120\u00a0ms');
  assert.equal(f.delta('pct', 1.25), '+1.3\u00a0pts');
  assert.equal(f.number(2.5, 1), '2.5');
});

test('French figures: decimal comma, spaced thousands and percent sign', () => {
  const f = formatter('fr-FR');
  assert.equal(f.duration(2140.5), '2,14\u00a0s');
  assert.equal(f.percent(62.25), '62,3\u202f%');
  assert.equal(f.count(1234567), '1\u202f234\u202f567');
  assert.equal(f.delta('pct', -2), '−2,0\u00a0pt');
});

test('good / needs improvement / poor shares add up to 100', () => {
  assert.deepEqual(split(70, 10), {good: 70, ni: 20, poor: 10});
  assert.equal(split(null, 10), null);
});

test('the share of page views with marketing consent', () => {
  assert.equal(consentShare({page_views: 200, marketing_page_views: 150}), 75);
  assert.equal(consentShare({page_views: 0, marketing_page_views: 0}), null);
  assert.equal(consentShare(null), null);
});

test('periods in UTC days', () => {
  assert.deepEqual(lastDays(new Date('2026-03-29T23:30:00Z'), 7), {from: '2026-03-23', to: '2026-03-29'});
  assert.equal(daysBetween('2026-03-01', '2026-03-28'), 28);
});
