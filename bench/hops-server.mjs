// A do-nothing stand-in for the exchanges of one replicated write, to measure their floor
// on this machine (bench/hops.ts). `echo`: answers every POST with {"ok":true} once the
// body is read. `relay <url>…`: reads the body, POSTs it to every url at once over undici
// pools (as the master ships to slaves), answers when all answered. node:http, as sqlfleet's
// lane. Prints {"msg":"ready","url":…}.
import http from 'node:http';
import { Pool } from 'undici';

const [mode, ...targets] = process.argv.slice(2);
const pools = targets.map((u) => new Pool(u, { connections: 8, pipelining: 1, keepAliveTimeout: 30_000 }));
const ANSWER = '{"ok":true,"index":1,"results":[{"changes":1,"last_insert_rowid":1}]}';

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks).toString();
    if (mode === 'relay') {
      await Promise.all(pools.map(async (p) => (await p.request({ method: 'POST', path: '/internal/append', body, headers: { 'content-type': 'application/json' }, headersTimeout: 10_000, bodyTimeout: 10_000 })).body.text()));
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) });
    res.end(ANSWER);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ msg: 'ready', url: `http://127.0.0.1:${server.address().port}` })));
process.on('SIGTERM', () => process.exit(0));
