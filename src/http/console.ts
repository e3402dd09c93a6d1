// The web console served at GET / on every node: one self-contained HTML page (inline CSS
// and script, no CDN, no request to any other origin). It talks only to the node that
// served it, through the same public API as any client: GET /status, GET /checksum, POST /.
//
// The script is plain browser JavaScript kept in a String.raw literal, so it must not
// contain backticks or "${". Everything shown from the network is inserted as text
// (textContent / Text nodes through h()), never parsed as HTML.

/** HTML of the console: node identity, cluster panel, SQL box, table browser, replica view. */
export function consoleHtml(): string {
  return `<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sqlfleet console</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head><body>
${BODY}
<script>${SCRIPT}</script>
</body></html>`;
}

const STYLE = String.raw`
:root{--fg:#1d2330;--muted:#667085;--line:#dde2ea;--bg:#f5f7fa;--card:#fff;--accent:#2f5bd3;
  --ok:#18794e;--okbg:#e6f6ee;--warn:#a15c00;--warnbg:#fff4e0;--bad:#b42318;--badbg:#fdecea;}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:baseline;padding:.7em 1.2em;background:#1d2330;color:#fff}
header h1{font-size:1.15em;margin:0 .4em 0 0}
header .muted{color:#aeb6c5}
header a{color:#cfe0ff}
header button{padding:0 .5em;font-size:.85em;background:none;color:#cfe0ff;border-color:#55607a}
main{display:grid;grid-template-columns:minmax(0,1fr);gap:1em;padding:1em 1.2em;max-width:110em}
section.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.8em 1em}
h2{font-size:1em;margin:0 0 .6em;display:flex;gap:.8em;align-items:baseline}
h2 small{font-weight:normal;color:var(--muted)}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:0 .5em;border-radius:9px;font-size:.85em;font-weight:600;background:#e8ecf3;color:#344054}
.role-master{background:#e0e9ff;color:#1d3f9e}.role-slave{background:#efe6ff;color:#5b2bb5}
.state-up,.check-equal{background:var(--okbg);color:var(--ok)}
.state-catching_up,.check-pending{background:var(--warnbg);color:var(--warn)}
.state-down,.state-diverged,.check-differs{background:var(--badbg);color:var(--bad)}
table.grid{border-collapse:collapse;margin:.3em 0 .8em;font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace}
table.grid th,table.grid td{border:1px solid var(--line);padding:2px 8px;text-align:left;vertical-align:top;white-space:pre-wrap;max-width:40em;overflow-wrap:anywhere}
table.grid th{background:#f0f3f8;position:sticky;top:0}
table.grid td.num{text-align:right}
table.grid td.null{color:var(--muted);font-style:italic}
table.grid tr.self td{background:#f7f9ff}
.scroll{overflow:auto;max-height:32em}
textarea{width:100%;min-height:7em;font:13px ui-monospace,SFMono-Regular,Menlo,monospace;padding:.5em;border:1px solid var(--line);border-radius:4px;resize:vertical}
button,select,input{font:inherit}
button{padding:.25em .9em;border:1px solid #b9c3d3;border-radius:4px;background:#fff;cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
.row{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.5em 0}
nav.tabs{display:flex;gap:.2em;border-bottom:1px solid var(--line);margin-bottom:.8em}
nav.tabs button{border:none;border-bottom:2px solid transparent;border-radius:0;background:none;padding:.4em .9em}
nav.tabs button[aria-selected="true"]{border-bottom-color:var(--accent);color:var(--accent);font-weight:600}
.error{border:1px solid #f3b8b2;background:var(--badbg);color:var(--bad);border-radius:4px;padding:.5em .8em;margin:.5em 0}
.error .code{font-weight:700;font-family:ui-monospace,monospace;margin-right:.6em}
.error dl{margin:.3em 0 0;display:grid;grid-template-columns:auto 1fr;gap:0 .8em;color:#7a271a}
.error dt{font-weight:600}.error dd{margin:0}
.meta{color:var(--muted);font-size:.9em;margin:.4em 0}
.browser{display:grid;grid-template-columns:14em minmax(0,1fr);gap:1em}
.browser ul{list-style:none;margin:0;padding:0}
.browser li button{width:100%;text-align:left;border:none;border-radius:3px;padding:.25em .5em;background:none}
.browser li button[aria-current="true"]{background:#e0e9ff}
pre.schema{background:#f0f3f8;padding:.4em .6em;border-radius:4px;white-space:pre-wrap;font-size:12px;margin:.3em 0}
code.digest{font-size:12px;color:var(--muted)}
dialog{border:1px solid var(--line);border-radius:6px;padding:1em 1.2em}
dialog label{display:block;margin:.4em 0}
dialog input{width:100%}
`;

const BODY = String.raw`<header>
  <h1>sqlfleet</h1>
  <span>node <b id="node-id">?</b> <span id="role" class="badge">&hellip;</span></span>
  <span class="muted" id="node-url"></span>
  <span>applied index <b id="applied-index">?</b></span>
  <span id="master-info" class="muted"></span>
  <span id="refreshed" class="muted"></span>
  <span id="auth-state" class="muted"></span>
</header>
<main>
<section class="card" id="cluster">
  <h2>Cluster <small>refreshes every 2 s</small></h2>
  <div class="scroll"><table class="grid" id="nodes">
    <thead><tr><th>id</th><th>role</th><th>url</th><th>state</th><th>applied index</th><th>lag</th><th>last seen</th><th>data check</th></tr></thead>
    <tbody></tbody>
  </table></div>
  <p class="meta" id="check-note"></p>
  <div id="checksum" class="meta"></div>
</section>
<section class="card">
  <nav class="tabs" role="tablist">
    <button role="tab" data-tab="sql" aria-selected="true">SQL</button>
    <button role="tab" data-tab="tables" aria-selected="false">Tables</button>
    <button role="tab" data-tab="replica" aria-selected="false">Replica</button>
  </nav>
  <div data-panel="sql">
    <textarea id="sql" spellcheck="false" placeholder="SELECT * FROM users">SELECT name, type FROM sqlite_schema WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_sqlfleet\_%' ESCAPE '\'</textarea>
    <div class="row">
      <button id="run" class="primary" title="Ctrl+Enter">Run</button>
      <label>reads <select id="consistency"><option value="local">local (this node)</option><option value="strong">strong (the master)</option></select></label>
      <span class="muted">Ctrl+Enter runs. Reads are answered here; writes are forwarded to the master and answered once applied here; schema changes go to the master only.</span>
    </div>
    <div id="result-meta" class="meta"></div>
    <div id="result"></div>
  </div>
  <div data-panel="tables" hidden>
    <div class="browser">
      <div><div class="row"><button id="tables-refresh">Refresh</button></div><ul id="table-list"></ul></div>
      <div>
        <div class="row">
          <label>rows per page <input id="limit" type="number" min="1" max="10000" value="100" style="width:6em"></label>
          <button id="page-prev">Previous</button><button id="page-next">Next</button>
          <span id="page-info" class="muted"></span>
        </div>
        <div id="table-view"><p class="muted">Choose a table.</p></div>
      </div>
    </div>
  </div>
  <div data-panel="replica" hidden>
    <p class="muted">This node's replica as show-all sees it: every user table with its checksum digest and rows in rowid order.</p>
    <div class="row"><button id="replica-refresh">Refresh</button><span id="replica-meta" class="muted"></span></div>
    <div id="replica"></div>
  </div>
</section>
</main>
<dialog id="auth-dialog">
  <form method="dialog" id="auth-form">
    <h2>Credentials required</h2>
    <p class="muted" id="auth-reason">This node answered 401 Unauthorized.</p>
    <label>user <input name="user" autocomplete="username"></label>
    <label>password <input name="password" type="password" autocomplete="current-password"></label>
    <label>or token <input name="token" autocomplete="off"></label>
    <div class="row"><button value="ok" class="primary">Sign in</button><button value="cancel" formnovalidate>Cancel</button></div>
  </form>
</dialog>`;

const SCRIPT = String.raw`
'use strict';
const REFRESH_MS = 2000;
const REQUEST_TIMEOUT_MS = 15000;
const REPLICA_MAX_ROWS = 200;
const USER_TABLES = "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_sqlfleet\\_%' ESCAPE '\\' ORDER BY name";

const $ = (sel) => document.querySelector(sel);

/** Builds an element. Children are Nodes or text; text is always inserted as text, never as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** A link only for http(s) URLs; anything else is shown as text. */
function link(url) {
  return /^https?:\/\//i.test(String(url)) ? h('a', { href: url }, url) : String(url ?? '');
}

// ---------------------------------------------------------------------------------------
// Credentials. The node has no client authentication yet; this is the one place that will
// need it. Every request goes through api(): when a node answers 401 it asks for
// credentials, keeps the Authorization value in sessionStorage (this tab only) and
// retries. Basic for user/password, Bearer for a token.
const AUTH_KEY = 'sqlfleet.authorization';
let asking = null;

function authHeader() {
  const value = sessionStorage.getItem(AUTH_KEY);
  return value ? { authorization: value } : {};
}

function base64(text) {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Shows the credentials dialog once, however many requests are waiting; true when the user signed in. */
function askCredentials(reason) {
  if (asking) return asking;
  const dialog = $('#auth-dialog');
  const form = $('#auth-form');
  $('#auth-reason').textContent = reason;
  asking = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const data = new FormData(form);
      form.reset();
      asking = null;
      if (dialog.returnValue !== 'ok') return resolve(false);
      const token = String(data.get('token') || '').trim();
      const user = String(data.get('user') || '');
      const value = token ? 'Bearer ' + token : 'Basic ' + base64(user + ':' + String(data.get('password') || ''));
      sessionStorage.setItem(AUTH_KEY, value);
      showAuthState();
      resolve(true);
    }, { once: true });
    dialog.showModal();
  });
  return asking;
}

/** Header note: who the console signs in as, with a way to forget it. */
function showAuthState() {
  const value = sessionStorage.getItem(AUTH_KEY);
  const box = $('#auth-state');
  if (!value) return box.replaceChildren();
  let who = 'token';
  if (value.startsWith('Basic ')) {
    try {
      who = new TextDecoder().decode(Uint8Array.from(atob(value.slice(6)), (ch) => ch.charCodeAt(0))).split(':')[0];
    } catch {
      who = '?';
    }
  }
  box.replaceChildren('signed in as ' + who + ' ', h('button', { id: 'sign-out', onclick: () => { sessionStorage.removeItem(AUTH_KEY); location.reload(); } }, 'sign out'));
}

/** fetch() against this node with credentials, a timeout, and a sign-in prompt on 401. */
async function api(path, init) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, {
      ...init,
      // x-sqlfleet-console: answer 401 without WWW-Authenticate, so the browser does not show its own prompt.
      headers: { ...((init && init.headers) || {}), 'x-sqlfleet-console': '1', ...authHeader() },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (res.status !== 401 || attempt >= 3) return res;
    if (attempt > 0) sessionStorage.removeItem(AUTH_KEY);
    const why = attempt === 0 ? 'This node answered 401 Unauthorized.' : 'Those credentials were refused.';
    if (!(await askCredentials(why))) return res;
  }
}
// ---------------------------------------------------------------------------------------

/** JSON.parse that keeps integers beyond 2^53 exact (as BigInt), as the node writes them. */
const BIG = '\u0000big:';
function parseJson(text) {
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (m) =>
    m[0] !== '"' && /^-?\d{16,}$/.test(m) && !Number.isSafeInteger(Number(m)) ? '"\\u0000big:' + m + '"' : m);
  return JSON.parse(marked, (k, v) => (typeof v === 'string' && v.startsWith(BIG) ? BigInt(v.slice(BIG.length)) : v));
}

/** GET or POST; resolves to {status, ms, body} with body {ok:false,error} for failures of any kind. */
async function call(path, payload) {
  const t0 = performance.now();
  const init = payload === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) };
  try {
    const res = await api(path, init);
    const text = await res.text();
    let body;
    try {
      body = parseJson(text);
    } catch {
      body = { ok: false, error: { code: 'HTTP_' + res.status, message: text.slice(0, 500) || res.statusText } };
    }
    return { status: res.status, ms: performance.now() - t0, body };
  } catch (e) {
    const code = e && e.name === 'TimeoutError' ? 'CLIENT_TIMEOUT' : 'NETWORK';
    return { status: 0, ms: performance.now() - t0, body: { ok: false, error: { code, message: String(e && e.message || e) } } };
  }
}

/** POST / with a read (command "query"): results of a successful answer, or throws its error. */
async function read(query, params) {
  const r = await call('/', { command: 'query', query, ...(params ? { params } : {}) });
  if (r.status !== 200 || !r.body.ok) throw r.body.error || { code: 'HTTP_' + r.status, message: 'request failed' };
  return r.body;
}

function quoteIdent(name) {
  return '"' + String(name).replace(/"/g, '""') + '"';
}

function cell(v) {
  if (v === null || v === undefined) return h('td', { class: 'null' }, 'NULL');
  if (typeof v === 'number' || typeof v === 'bigint') return h('td', { class: 'num' }, String(v));
  if (typeof v === 'object') return h('td', {}, JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? String(x) : x)));
  return h('td', {}, String(v));
}

/** A results grid. */
function grid(columns, rows) {
  return h('div', { class: 'scroll' }, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map(cell))))));
}

/** An error box: code, message, and any extra fields (statement, master, outcome, ...). */
function errorBox(error) {
  const e = error || {};
  const extra = Object.entries(e).filter(([k]) => k !== 'code' && k !== 'message');
  return h('div', { class: 'error', role: 'alert', 'data-code': e.code || 'ERROR' },
    h('span', { class: 'code' }, e.code || 'ERROR'), h('span', { class: 'message' }, e.message || ''),
    extra.length ? h('dl', {}, extra.map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))])) : null);
}

function badge(cls, text) {
  return h('span', { class: 'badge ' + cls }, text);
}

// ---- cluster panel ----------------------------------------------------------------------
let lastIndex = null;
let checksumIndex = null;

function dataCheck(node, status) {
  if (node.role === 'master') return badge('', 'reference');
  if (!Array.isArray(status.verified)) return h('span', { class: 'muted' }, 'on master');
  const v = status.verified.find((x) => x.id === node.id);
  if (!v) return badge('check-pending', 'not yet compared');
  if (v.equal === true) return badge('check-equal', 'equal at ' + v.index);
  if (v.equal === false) return badge('check-differs', 'differs' + (v.tables && v.tables.length ? ': ' + v.tables.join(', ') : ''));
  return badge('check-pending', v.index === null ? 'not compared' : 'at ' + v.index + ', not compared');
}

function renderStatus(s) {
  $('#node-id').textContent = String(s.node);
  const role = $('#role');
  role.textContent = s.role;
  role.className = 'badge role-' + s.role;
  $('#node-url').textContent = s.url || '';
  $('#applied-index').textContent = String(s.applied_index);
  document.title = 'sqlfleet · node ' + s.node + ' (' + s.role + ')';
  const mi = $('#master-info');
  mi.replaceChildren();
  if (s.role !== 'master' && s.master) {
    mi.append('master ', link(s.master), s.master_reachable === false ? ' (unreachable)' : '');
  }
  if (typeof s.epoch === 'number') mi.append((mi.childNodes.length ? ' · ' : '') + 'epoch ' + s.epoch);
  if (Array.isArray(s.sync_set)) mi.append(' · sync set [' + s.sync_set.join(',') + ']');
  if (s.lease) mi.append(' · lease ' + (s.lease.valid ? s.lease.ms_left + ' of ' + s.lease.ttl_ms + ' ms left' : 'NOT valid'));
  if (s.etcd && !s.etcd.connected) mi.append(' · etcd unreachable' + (s.etcd.error ? ': ' + s.etcd.error : ''));
  const nodes = Array.isArray(s.nodes) ? s.nodes : [];
  $('#nodes tbody').replaceChildren(...nodes.map((n) => h('tr', { 'data-id': n.id, class: n.id === s.node ? 'self' : '' },
    h('td', { class: 'num' }, n.id),
    h('td', {}, badge('role-' + n.role, n.role)),
    h('td', {}, n.url ? link(n.url) : h('span', { class: 'muted' }, 'unknown')),
    h('td', { class: 'state' }, badge('state-' + n.state, n.state)),
    h('td', { class: 'num applied' }, n.applied_index ?? ''),
    h('td', { class: 'num lag' }, n.lag ?? ''),
    h('td', { class: 'num' }, typeof n.last_seen_ms === 'number' ? (n.last_seen_ms / 1000).toFixed(1) + ' s ago' : '\u2014'),
    h('td', { class: 'check' }, dataCheck(n, s)))));
  $('#check-note').textContent = Array.isArray(s.verified)
    ? 'Data check: the master compares each slave\'s checksum with its own at equal index (--verify-ms).'
    : 'Data check: comparisons run on the master; open its console (' + (s.master || 'master') + ') to see them.';
}

async function renderChecksum() {
  const r = await call('/checksum');
  const box = $('#checksum');
  if (r.status !== 200) return box.replaceChildren(errorBox(r.body.error));
  const c = r.body;
  checksumIndex = c.index;
  const tables = Object.entries(c.tables || {});
  box.replaceChildren(h('div', {}, 'This node\'s checksum at index ', h('b', {}, c.index), ': ',
    h('code', { class: 'digest', id: 'db-digest', title: c.db }, String(c.db).slice(0, 16) + '\u2026'), ' over ', tables.length, ' user table(s)'),
  tables.length ? h('details', {}, h('summary', {}, 'table digests'),
    grid(['table', 'digest'], tables.map(([t, d]) => [t, d]))) : null);
}

async function refresh() {
  if (document.hidden) return;
  const r = await call('/status');
  if (r.status !== 200) {
    $('#refreshed').textContent = 'status failed: ' + ((r.body.error && r.body.error.code) || r.status);
    return;
  }
  const s = r.body;
  renderStatus(s);
  $('#refreshed').textContent = 'updated ' + new Date().toLocaleTimeString();
  const changed = s.applied_index !== lastIndex;
  lastIndex = s.applied_index;
  if (changed || checksumIndex === null) await renderChecksum();
  if (changed) {
    if (currentTab === 'tables') loadTables();
    if (currentTab === 'replica') loadReplica();
  }
}

async function refreshLoop() {
  try {
    await refresh();
  } finally {
    setTimeout(refreshLoop, REFRESH_MS);
  }
}

// ---- SQL box -----------------------------------------------------------------------------
async function runSql() {
  const query = $('#sql').value;
  if (!query.trim()) return;
  const consistency = $('#consistency').value;
  $('#run').disabled = true;
  $('#result-meta').textContent = 'running\u2026';
  try {
    const r = await call('/', { query, ...(consistency === 'strong' ? { consistency } : {}) });
    showResult(r);
    if (r.body.ok && r.body.results.some((x) => !x.columns)) refresh();
  } finally {
    $('#run').disabled = false;
  }
}

function showResult(r) {
  const b = r.body;
  const meta = ['HTTP ' + (r.status || 'error'), Math.round(r.ms) + ' ms'];
  if (b.ok) {
    meta.push('index ' + b.index, 'answered by node ' + b.node + ' (' + b.role + ')');
    if (b.forwarded_to) meta.push('forwarded to ' + b.forwarded_to);
    if (Array.isArray(b.replicated_to)) meta.push('replicated to [' + b.replicated_to.join(', ') + ']');
    if (b.lagging && b.lagging.length) meta.push('lagging [' + b.lagging.join(', ') + ']');
    if (b.applied_here === false) meta.push('not yet applied here');
  }
  $('#result-meta').textContent = meta.join(' · ');
  const out = $('#result');
  if (!b.ok) return out.replaceChildren(errorBox(b.error));
  out.replaceChildren(...b.results.map((x, i) => h('div', { class: 'result', 'data-index': i },
    b.results.length > 1 ? h('div', { class: 'meta' }, 'statement ' + (i + 1)) : null,
    x.columns ? [grid(x.columns, x.rows), h('div', { class: 'meta' }, x.rows.length + ' row(s)')]
      : h('p', { class: 'changes' }, x.changes + ' row(s) changed, last insert rowid ' + x.last_insert_rowid))));
}

// ---- table browser -----------------------------------------------------------------------
let currentTable = null;
let offset = 0;

async function loadTables() {
  const list = $('#table-list');
  try {
    const names = (await read(USER_TABLES)).results[0].rows.map((r) => String(r[0]));
    list.replaceChildren(...names.map((name) => h('li', {}, h('button', {
      'data-table': name, 'aria-current': name === currentTable ? 'true' : 'false',
      onclick: () => { offset = 0; showTable(name); },
    }, name))));
    if (!names.length) list.replaceChildren(h('li', { class: 'muted' }, 'no user tables'));
    if (currentTable && names.includes(currentTable)) showTable(currentTable);
  } catch (e) {
    list.replaceChildren(errorBox(e));
  }
}

async function showTable(name) {
  currentTable = name;
  for (const b of document.querySelectorAll('#table-list button')) b.setAttribute('aria-current', String(b.dataset.table === name));
  const limit = Math.max(1, Math.min(10000, Number($('#limit').value) || 100));
  const view = $('#table-view');
  try {
    const [schema, count, page] = await Promise.all([
      read('SELECT sql FROM sqlite_schema WHERE name = ?', [name]),
      read('SELECT count(*) FROM ' + quoteIdent(name)),
      read('SELECT * FROM ' + quoteIdent(name) + ' LIMIT ? OFFSET ?', [limit, offset]),
    ]);
    const total = Number(count.results[0].rows[0][0]);
    const rows = page.results[0];
    $('#page-info').textContent = total ? 'rows ' + (offset + 1) + '\u2013' + (offset + rows.rows.length) + ' of ' + total : '0 rows';
    view.replaceChildren(h('h3', {}, name),
      h('pre', { class: 'schema' }, (schema.results[0].rows[0] || [''])[0]),
      grid(rows.columns, rows.rows));
  } catch (e) {
    view.replaceChildren(errorBox(e));
  }
}

function page(delta) {
  if (!currentTable) return;
  const limit = Math.max(1, Number($('#limit').value) || 100);
  offset = Math.max(0, offset + delta * limit);
  showTable(currentTable);
}

// ---- replica view (what show-all prints for this node) ------------------------------------
/** Rows in show-all's order: by rowid, or by primary key for a WITHOUT ROWID table. */
async function replicaRows(name) {
  const limit = ' LIMIT ' + (REPLICA_MAX_ROWS + 1);
  try {
    return (await read('SELECT * FROM ' + quoteIdent(name) + ' ORDER BY rowid' + limit)).results[0];
  } catch {
    const pk = (await read('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk', [name])).results[0].rows.map((r) => quoteIdent(r[0]));
    const order = pk.length ? ' ORDER BY ' + pk.join(', ') : '';
    return (await read('SELECT * FROM ' + quoteIdent(name) + order + limit)).results[0];
  }
}

async function loadReplica() {
  const out = $('#replica');
  try {
    const sum = await call('/checksum');
    if (sum.status !== 200) throw sum.body.error;
    const digests = sum.body.tables || {};
    const listing = await read(USER_TABLES);
    const names = listing.results[0].rows.map((r) => String(r[0]));
    $('#replica-meta').textContent = 'index ' + sum.body.index + ' · db ' + String(sum.body.db).slice(0, 16) + '\u2026 · ' + names.length + ' table(s)';
    const parts = [];
    for (const name of names) {
      const rows = await replicaRows(name);
      const more = rows.rows.length > REPLICA_MAX_ROWS;
      parts.push(h('div', { class: 'replica-table', 'data-table': name },
        h('h3', {}, 'table ' + name + ' ', h('code', { class: 'digest' }, digests[name] ? String(digests[name]).slice(0, 16) + '\u2026' : 'no digest')),
        grid(rows.columns, rows.rows.slice(0, REPLICA_MAX_ROWS)),
        more ? h('p', { class: 'muted' }, 'first ' + REPLICA_MAX_ROWS + ' rows shown') : null));
    }
    out.replaceChildren(...(parts.length ? parts : [h('p', { class: 'muted' }, 'no user tables')]));
  } catch (e) {
    out.replaceChildren(errorBox(e));
  }
}

// ---- tabs and wiring ----------------------------------------------------------------------
let currentTab = 'sql';
function selectTab(tab) {
  currentTab = tab;
  for (const b of document.querySelectorAll('nav.tabs button')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
  for (const p of document.querySelectorAll('[data-panel]')) p.hidden = p.dataset.panel !== tab;
  if (tab === 'tables') loadTables();
  if (tab === 'replica') loadReplica();
}

for (const b of document.querySelectorAll('nav.tabs button')) b.addEventListener('click', () => selectTab(b.dataset.tab));
$('#run').addEventListener('click', runSql);
$('#sql').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    runSql();
  }
});
$('#tables-refresh').addEventListener('click', loadTables);
$('#replica-refresh').addEventListener('click', loadReplica);
$('#page-prev').addEventListener('click', () => page(-1));
$('#page-next').addEventListener('click', () => page(1));
$('#limit').addEventListener('change', () => { offset = 0; if (currentTable) showTable(currentTable); });
document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
showAuthState();
refreshLoop();
`;
