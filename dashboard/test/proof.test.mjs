// Differences written with their interval and verdict, and "what speed is
// worth", in both languages (issue 21).
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {formatter} from '../src/format.js';
import {translator} from '../src/i18n.js';
import {differenceText, kindOf, needed, signed, verdictText} from '../src/proof.js';
import {estimateText, worthSentence, writers} from '../src/worth.js';

const en = {f: formatter('en-US'), t: translator('en'), locale: 'en-US'};
const fr = {f: formatter('fr-FR'), t: translator('fr'), locale: 'fr-FR'};
const diff = (/** @type {any} */ l, kind, delta, low, high) => differenceText(kind, delta, low, high, l.f, l.t, l.locale);

test('a difference with its interval, in the unit of the difference', () => {
  assert.equal(diff(en, 'lcp', -500, -560.3, -439.6), '−500\u00a0ms (−560 to −440)');
  assert.equal(diff(fr, 'lcp', -500, -560.3, -439.6), '−500\u00a0ms (−560 à −440)');
  assert.equal(diff(en, 'lcp', -340, -420, -260), '−340\u00a0ms (−420 to −260)');
  // From a second on, the difference is in seconds and so are its bounds.
  assert.equal(diff(en, 'lcp', -1234, -1500, -900), '−1.23\u00a0s (−1.50 to −0.90)');
  assert.equal(diff(fr, 'inp', 24, -3.2, 51), '+24\u00a0ms (−3 à +51)');
  assert.equal(diff(en, 'cls', -0.02, -0.031, -0.009), '−0.020 (−0.031 to −0.009)');
  assert.equal(diff(en, 'pct', 1.25, -0.4, 2.9), '+1.3\u00a0pts (−0.4 to +2.9)');
  assert.equal(diff(fr, 'pct', 1.25, -0.4, 2.9), '+1,3\u00a0pt (−0,4 à +2,9)');
  // Too few: no interval, the difference alone; no difference at all: a dash.
  assert.equal(diff(en, 'lcp', 36, null, null), '+36\u00a0ms');
  assert.equal(diff(en, 'lcp', null, null, null), '–');
});

test('a bound that rounds to zero has no sign', () => {
  assert.equal(signed('en-US', -0.2, 0), '0');
  assert.equal(signed('en-US', 0.0004, 3), '0.000');
  assert.equal(signed('fr-FR', -1234.5, 0), '−1\u202f235');
  assert.equal(signed('en-US', 12, 0), '+12');
});

test('metrics map to how they are written', () => {
  assert.equal(kindOf('lcp_p75'), 'lcp');
  assert.equal(kindOf('cls_p75'), 'cls');
  assert.equal(kindOf('conversion_rate'), 'pct');
});

test('too few says how many more page views it needs, from the threshold sent', () => {
  assert.equal(needed(20, 600, 50), 30);
  assert.equal(needed(20, 45, 50), 35); // both sides short
  assert.equal(needed(60, 70, 50), 0);
  assert.equal(needed(20, 600, 100), 80); // the collector's threshold, not a copy
  const c = {kind: 'release', subject: 'r3', baseline: 'r2', metric: 'lcp_p75', subject_value: 2000, baseline_value: 1900,
    delta: 100, delta_low: null, delta_high: null, subject_n: 20, baseline_n: 600, verdict: 'too few'};
  assert.equal(verdictText(c, 50, en.f, en.t), 'too few: about 30 more page views needed');
  assert.equal(verdictText(c, 50, fr.f, fr.t), 'trop peu : il faut environ 30 pages vues de plus');
  assert.equal(verdictText({...c, metric: 'conversion_rate', subject_n: 8}, 50, en.f, en.t),
    'too few: about 42 more sessions needed');
  assert.equal(verdictText({...c, subject_n: 1, baseline_n: 1}, 1000, en.f, en.t), 'too few: about 1,998 more page views needed');
});

test('verdicts in words', () => {
  const c = {kind: 'release', subject: 'r2', baseline: 'r1', metric: 'lcp_p75', subject_value: 1900, baseline_value: 2400,
    delta: -500, delta_low: -560, delta_high: -440, subject_n: 600, baseline_n: 600, verdict: 'better'};
  assert.equal(verdictText(c, 50, en.f, en.t), 'better');
  assert.equal(verdictText(c, 50, fr.f, fr.t), 'meilleur');
  assert.equal(verdictText({...c, verdict: 'worse'}, 50, fr.f, fr.t), 'moins bon');
  assert.equal(verdictText({...c, verdict: 'no change'}, 50, en.f, en.t), 'no clear change');
  assert.equal(verdictText({...c, verdict: 'no change'}, 50, fr.f, fr.t), 'pas de changement net');
  assert.equal(verdictText({...c, verdict: null}, 50, en.f, en.t), '');
  // Not measured on either side (no INP without interactions): no verdict to read.
  assert.equal(verdictText({...c, verdict: 'too few', subject_n: 0, baseline_n: 0}, 50, en.f, en.t), '');
});

test('what speed is worth: the estimate, its interval and the sentence', () => {
  const w = writers('en-US');
  assert.equal(estimateText(16, 5.4, 27.6, w.conversions, en.t), '+16 (+5 to +28)');
  assert.equal(estimateText(884.7, 298.6, 1526.1, w.revenue, en.t), '+884.70 (+298.60 to +1,526.10)');
  assert.equal(estimateText(1, null, null, w.conversions, en.t), '+1');
  assert.equal(estimateText(null, null, null, w.conversions, en.t), '–');
  const data = {thresholds: {lcp: [2500, 4000]}, currency: 'EUR'};
  const row = {slow_sessions: 320, fast_conversion_rate: 10, slow_conversion_rate: 5, extra_conversions: 16,
    extra_conversions_low: 5.4, extra_conversions_high: 27.6, revenue_per_conversion: 55.29, extra_revenue: 884.7, extra_revenue_low: 298.6, extra_revenue_high: 1526.1};
  assert.equal(worthSentence(row, data, en.f, en.t, en.locale),
    'Had the 320 sessions that landed on a page slower than 2.5\u00a0s converted like those on faster pages (10.0% instead of 5.0%),'
    + ' the last 28 days would have had +16 (+5 to +28) conversions. Revenue (EUR): +884.70 (+298.60 to +1,526.10), at the mean value of a conversion.');
  assert.equal(worthSentence(row, data, fr.f, fr.t, fr.locale),
    'Si les 320 sessions arrivées sur une page de plus de 2,5\u00a0s avaient converti comme celles arrivées sur une page plus rapide'
    + ' (10,0\u202f% au lieu de 5,0\u202f%), les 28 derniers jours auraient compté +16 (+5 à +28) conversions.'
    + ' Chiffre d’affaires (EUR) : +884,70 (+298,60 à +1\u202f526,10), à la valeur moyenne d’une conversion.');
  // Slow sessions converting as well: no gain is claimed, and no revenue.
  assert.match(worthSentence({...row, extra_conversions: -2, extra_conversions_low: -9, extra_conversions_high: 5}, data, en.f, en.t, en.locale),
    /^Sessions landing on pages slower than 2.5\u00a0s converted no worse \(5.0% against 10.0%\): −2 \(−9 to \+5\) conversions\.$/);
  // Conversions without a value: no revenue sentence.
  assert.doesNotMatch(worthSentence({...row, revenue_per_conversion: 0, extra_revenue: 0}, data, en.f, en.t, en.locale), /Revenue/);
  assert.equal(worthSentence({...row, extra_conversions: null}, data, en.f, en.t, en.locale),
    'Too few sessions with marketing consent in the last 28 days.');
});
