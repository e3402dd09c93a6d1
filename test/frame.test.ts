// Append frames on the slave (src/replication/frame.ts): each entry's statements text is
// taken exactly as the master shipped it (the text its hash covers), and any body not in
// the shipper's layout gives no texts (the slave serializes the parsed statements again).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAppend, shippedStmts, stmtsTexts } from '../src/replication/frame.js';
import { entryJson } from '../src/store/store.js';

const stmts = [
  [{ sql: 'INSERT INTO t VALUES (?, ?)', params: ['a"b\\', 'x],"key":"y'] }],
  [{ sql: "SELECT '}]' || \"[{\"", named: { stmts: [1, { a: '\\"' }] } }, { sql: 'DELETE FROM t' }],
  [{ sql: 'INSERT INTO t VALUES (?)', params: ['\\\\'] }],
];
const body = (entries: string[]) => `{"epoch":3,"master":"http://m:1","master_index":9,"entries":[${entries.join(',')}]}`;
const entry = (i: number, key?: string) =>
  entryJson({ index: 7 + i, epoch: 3, ts: 1700000000000 + i, seed: 'ab12', hash: 'ff'.repeat(32), ...(key === undefined ? {} : { key }) }, JSON.stringify(stmts[i]));

test('each entry statements text, with and without idempotency keys', () => {
  const b = body([entry(0, 'k"1}'), entry(1), entry(2, 'z')]);
  const req = parseAppend(b) as { entries: { stmts: unknown }[] };
  const texts = shippedStmts(req);
  assert.deepEqual(texts, stmts.map((s) => JSON.stringify(s)));
  req.entries.forEach((e, i) => assert.deepEqual(e.stmts, JSON.parse(texts![i])));
});

test('a body in another layout gives no texts, and still parses', () => {
  const e = entry(0);
  for (const b of [
    body([e]).replace('"entries":[', '"entries": ['), // whitespace
    body([e.replace('{"index":', '{"index":7,"index":')]), // a duplicate key
    body([e.replace('"stmts":', '"stmts":[],"stmts":')]),
    body([e]).replace('"master_index":9,', '') + ' ',
    `{"epoch":3,"entries":[${e}],"entries":[]}`,
    `{"epoch":3,"x":{"a":1,"entries":[${e}]},"entries":[${e}]}`, // the first "entries" is not the top level's
  ]) {
    const req = parseAppend(b);
    assert.equal(shippedStmts(req), undefined, b);
  }
  assert.equal(stmtsTexts(body([entry(0)]), 2), null); // count differs
  assert.deepEqual(stmtsTexts(`{"epoch":3,"x":{"entries":[${e}]},"entries":[${e}]}`, 1), [JSON.stringify(stmts[0])]); // the top level's
  assert.equal(shippedStmts(parseAppend(body([]))), undefined);
  assert.throws(() => parseAppend('{"epoch":'), /malformed JSON/);
});
