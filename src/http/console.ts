// The web console served at GET /: self-contained HTML, no network fetches.

/** HTML of the console: a SQL box posting to this node and the cluster status. */
export function consoleHtml(): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>sqlfleet</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}
textarea{width:100%;height:6em;font:13px monospace}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;font:12px monospace}
.err{color:#b00}
</style></head><body>
<h1>sqlfleet <small id="who"></small></h1>
<h2>Cluster</h2><div id="nodes"></div>
<h2>SQL</h2>
<textarea id="sql" placeholder="SELECT name FROM sqlite_schema">SELECT name, type FROM sqlite_schema</textarea>
<button id="run">Run (Ctrl+Enter)</button>
<div id="out"></div>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function table(cols, rows){return '<table><tr>'+cols.map(c=>'<th>'+esc(c)+'</th>').join('')+'</tr>'+rows.map(r=>'<tr>'+r.map(v=>'<td>'+esc(v===null?'NULL':v)+'</td>').join('')+'</tr>').join('')+'</table>';}
async function status(){
  try{const s=await (await fetch('/status')).json();
  $('who').textContent='node '+s.node+' ('+s.role+') index '+s.applied_index;
  $('nodes').innerHTML=table(['id','role','url','state','applied','lag'],s.nodes.map(n=>[n.id,n.role,n.url,n.state,n.applied_index,n.lag]));}catch(e){$('nodes').textContent=String(e);}
}
async function run(){
  const r=await fetch('/',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({query:$('sql').value})});
  const j=await r.json();
  if(!j.ok){$('out').innerHTML='<p class="err">'+esc(j.error.code+': '+j.error.message)+'</p>';return;}
  $('out').innerHTML='<p>index '+j.index+'</p>'+j.results.map(x=>x.columns?table(x.columns,x.rows):'<p>changes '+x.changes+', last rowid '+x.last_insert_rowid+'</p>').join('');
  status();
}
$('run').onclick=run;
$('sql').addEventListener('keydown',e=>{if(e.key==='Enter'&&e.ctrlKey)run();});
status();setInterval(status,2000);
</script></body></html>`;
}
