// Both languages say everything; the browser's first language we speak wins.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {LABELS, pickLanguage, translator} from '../src/i18n.js';

test('English and French have the same labels, none empty', () => {
  assert.deepEqual(Object.keys(LABELS.fr).sort(), Object.keys(LABELS.en).sort());
  for (const [lang, labels] of Object.entries(LABELS)) {
    for (const [key, text] of Object.entries(labels)) assert.ok(text.trim(), `${lang}.${key}`);
  }
});

test('placeholders survive translation', () => {
  for (const key of Object.keys(LABELS.en)) {
    const names = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(names(LABELS.fr[key]), names(LABELS.en[key]), key);
  }
});

test('language from navigator.languages', () => {
  assert.deepEqual(pickLanguage(['fr-FR', 'en-US']), {lang: 'fr', locale: 'fr-FR'});
  assert.deepEqual(pickLanguage(['de-DE', 'fr-CA']), {lang: 'fr', locale: 'fr-CA'});
  assert.deepEqual(pickLanguage(['de-DE']), {lang: 'en', locale: 'en-US'});
  assert.deepEqual(pickLanguage(['en-GB']), {lang: 'en', locale: 'en-GB'});
});

test('translator fills placeholders', () => {
  assert.equal(translator('fr')('vs_previous', {days: 28}), 'par rapport aux 28 jours précédents');
  assert.equal(translator('xx')('page_views_n', {n: '3'}), '3 page views');
});
