import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorShape } from '../../src/http/errors.ts';

// The body of an error follows Accept as WebOb 1.8 (Glance's) chooses it: these answers were read from
// WebOb's own acceptable_offers(['text/html', 'application/json']) for each header.
const WEBOB: Array<[string, 'html' | 'json' | 'plain']> = [
  ['application/json, text/plain, */*', 'html'],
  ['application/json, */*', 'html'],
  ['*/*, application/json', 'html'],
  ['application/json;q=0.5, text/html;q=0.5', 'html'],
  ['text/*, application/json', 'html'],
  ['text/plain, */*;q=0.1', 'html'],
  ['application/json;charset=utf-8', 'plain'],
  ['application/json;version=2', 'plain'],
  ['text/html;level=1', 'plain'],
  ['garbage', 'html'],
  ['application/json;q=abc', 'html'],
  ['application/json;q=1.5', 'html'],
  [',application/json', 'html'],
  ['application/xml', 'plain'],
  ['*/*;q=0', 'plain'],
  ['text/plain;q=0.5, application/json;q=0.9', 'json'],
  ['', 'plain'],
  ['application/json', 'json'],
  ['text/html', 'html'],
  ['text/plain', 'plain'],
  ['*/*', 'html'],
  ['application/*', 'json'],
  ['APPLICATION/JSON', 'json'],
  ['application/json ; q=0.8, text/html;q=0.7', 'json'],
  ['text/html;q=0, application/json;q=0', 'plain'],
  ['text/html;q=0, */*', 'json'],
  ['application/json;q=0.001', 'json'],
  ['text/html;q=0.0001', 'html'],
  ['application/json,', 'json'],
  ['application/json,,text/html', 'html'],
  ['application/json;q=0.5;foo=bar, text/html;q=0.4', 'json'],
  ['text/html;q=0, text/html', 'plain'],
  ['application/json; charset="utf-8"', 'plain'],
  ['*/*;q=0.9, application/json;q=0.1', 'html'],
  ['text/*;q=0.3, */*;q=0.9', 'json'],
  ['text/html, application/json;q=1.0', 'html'],
  [' application/json', 'html'],
  ['application/json;q=0.5 , text/html;q=0.6', 'html'],
];

test("an error's body is chosen from Accept as WebOb chooses it", () => {
  for (const [accept, shape] of WEBOB) assert.equal(errorShape(accept), shape, JSON.stringify(accept));
  assert.equal(errorShape(undefined), 'plain', 'no Accept at all');
});
