/**
 * The capture server's web UI: one page, a script and a style sheet, kept here as
 * strings so they ship inside the package (dist/ and the packed tarball) with no build
 * step and no framework.
 *
 * Postfix counterpart: none (Mailpit's web UI is the model). The page lists captured
 * messages (from, to, subject, time), follows new mail through `/api/events`
 * (server-sent events) without reloading, searches with Mailpit's filters, and shows a
 * message: its HTML in a sandboxed iframe (`/view/{ID}.html`, whose CSP blocks scripts
 * and remote content), its text, headers, raw source and attachment downloads.
 *
 * SECURITY: the script builds every element with createElement and sets message data
 * only through textContent, attributes it escapes by construction, or URLs it encodes;
 * it never uses innerHTML. The page's CSP allows scripts and styles from the server
 * only.
 *
 * @module
 */

/** The page. */
export const UI_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Postern capture</title>
<link rel="stylesheet" href="/capture-ui.css">
<script src="/capture-ui.js" defer></script>
</head>
<body>
<header>
  <h1>Postern capture</h1>
  <input id="search" type="search" placeholder="Search: to:ann@example.com subject:welcome words" aria-label="Search">
  <span id="status" role="status"></span>
  <button id="delete-all" type="button">Delete all</button>
</header>
<main>
  <section id="list-pane" aria-label="Messages">
    <table id="messages">
      <thead><tr><th>From</th><th>To</th><th>Subject</th><th>Received</th></tr></thead>
      <tbody></tbody>
    </table>
    <p id="empty">No mail captured yet. Send some to the SMTP port.</p>
  </section>
  <section id="message" aria-label="Message" hidden>
    <h2 id="m-subject"></h2>
    <dl id="m-meta"></dl>
    <ul id="m-attachments"></ul>
    <nav id="tabs">
      <button type="button" data-tab="html">HTML</button>
      <button type="button" data-tab="text">Text</button>
      <button type="button" data-tab="headers">Headers</button>
      <button type="button" data-tab="raw">Raw</button>
      <a id="m-download" href="#">Download .eml</a>
      <button type="button" id="m-delete">Delete</button>
    </nav>
    <iframe id="html-view" sandbox="" referrerpolicy="no-referrer" title="HTML body"></iframe>
    <pre id="text-view" hidden></pre>
    <table id="headers-view" hidden><tbody></tbody></table>
    <pre id="raw-view" hidden></pre>
  </section>
</main>
</body>
</html>
`;

/** The style sheet. */
export const UI_CSS = `
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #222; background: #fafafa; }
header { display: flex; gap: 12px; align-items: center; padding: 8px 16px; background: #243447; color: #fff; }
header h1 { font-size: 16px; margin: 0; }
#search { flex: 1; max-width: 480px; padding: 4px 8px; }
#status { font-size: 12px; opacity: .8; }
main { display: flex; height: calc(100vh - 44px); }
#list-pane { flex: 0 0 45%; overflow: auto; border-right: 1px solid #ddd; }
#messages { width: 100%; border-collapse: collapse; table-layout: fixed; }
#messages th, #messages td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #eee; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#messages th:nth-child(1), #messages th:nth-child(2) { width: 27%; }
#messages th:nth-child(4) { width: 18%; }
#messages tbody tr { cursor: pointer; }
#messages tbody tr:hover { background: #eef4fb; }
#messages tbody tr.unread { font-weight: 600; }
#messages tbody tr.selected { background: #d8e8f8; }
#empty { padding: 16px; color: #777; }
#message { flex: 1; display: flex; flex-direction: column; padding: 12px 16px; overflow: auto; }
#message h2 { margin: 0 0 8px; font-size: 18px; }
#m-meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 8px; }
#m-meta dt { color: #666; }
#m-meta dd { margin: 0; word-break: break-all; }
#m-attachments { margin: 0 0 8px; padding-left: 18px; }
#tabs { display: flex; gap: 6px; align-items: center; margin-bottom: 8px; }
#tabs button.active { background: #243447; color: #fff; }
#html-view { flex: 1; min-height: 360px; width: 100%; border: 1px solid #ddd; background: #fff; }
pre { flex: 1; margin: 0; padding: 8px; background: #fff; border: 1px solid #ddd; overflow: auto; white-space: pre-wrap; word-break: break-all; }
#headers-view td { vertical-align: top; padding: 2px 8px; border-bottom: 1px solid #eee; word-break: break-all; }
#headers-view td:first-child { font-weight: 600; white-space: nowrap; }
`;

/** The script: plain DOM, no framework, message data only ever as text. */
export const UI_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const tbody = document.querySelector('#messages tbody');
  const rows = new Map();
  let current = null;
  let query = '';

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const mailbox = (a) => (a && (a.Name ? a.Name + ' <' + a.Address + '>' : a.Address)) || '';
  const mailboxes = (list) => (list || []).map(mailbox).join(', ');
  const api = async (path, init) => {
    const res = await fetch(path, init);
    if (!res.ok) throw new Error(path + ': ' + res.status + ' ' + (await res.text()));
    return res;
  };
  const status = (text) => { $('status').textContent = text; };
  const refreshEmpty = () => { $('empty').hidden = rows.size > 0; };

  function rowFor(m) {
    const tr = el('tr');
    tr.dataset.id = m.ID;
    if (!m.Read) tr.classList.add('unread');
    tr.append(
      el('td', mailbox(m.From), 'from'),
      el('td', mailboxes(m.To.concat(m.Cc || [])), 'to'),
      el('td', m.Subject || '(no subject)', 'subject'),
      el('td', new Date(m.Created).toLocaleString(), 'time'),
    );
    tr.title = m.Snippet || '';
    tr.addEventListener('click', () => open(m.ID));
    return tr;
  }

  function add(m, atTop) {
    if (rows.has(m.ID)) return;
    const tr = rowFor(m);
    rows.set(m.ID, tr);
    if (atTop) tbody.prepend(tr); else tbody.append(tr);
    refreshEmpty();
  }

  function remove(id) {
    const tr = rows.get(id);
    if (tr) tr.remove();
    rows.delete(id);
    if (current === id) { current = null; $('message').hidden = true; }
    refreshEmpty();
  }

  async function load() {
    const path = query ? '/api/v1/search?limit=500&query=' + encodeURIComponent(query) : '/api/v1/messages?limit=500';
    const data = await (await api(path)).json();
    for (const id of [...rows.keys()]) remove(id);
    for (const m of data.messages) add(m, false);
    status(data.messages_count + ' of ' + data.total + ' messages');
  }

  function show(tab) {
    for (const b of document.querySelectorAll('#tabs button[data-tab]')) b.classList.toggle('active', b.dataset.tab === tab);
    $('html-view').hidden = tab !== 'html';
    $('text-view').hidden = tab !== 'text';
    $('headers-view').hidden = tab !== 'headers';
    $('raw-view').hidden = tab !== 'raw';
  }

  async function open(id) {
    const m = await (await api('/api/v1/message/' + encodeURIComponent(id))).json();
    current = id;
    for (const [rid, tr] of rows) tr.classList.toggle('selected', rid === id);
    rows.get(id)?.classList.remove('unread');
    $('message').hidden = false;
    $('m-subject').textContent = m.Subject || '(no subject)';
    const meta = $('m-meta');
    meta.replaceChildren();
    const pairs = [['From', mailbox(m.From)], ['To', mailboxes(m.To)], ['Cc', mailboxes(m.Cc)], ['Bcc', mailboxes(m.Bcc)], ['Reply-To', mailboxes(m.ReplyTo)], ['Date', new Date(m.Date).toLocaleString()]];
    for (const [k, v] of pairs) if (v) meta.append(el('dt', k), el('dd', v));
    const list = $('m-attachments');
    list.replaceChildren();
    for (const a of [...m.Attachments, ...m.Inline]) {
      const link = el('a', (a.FileName || a.ContentID || 'part ' + a.PartID) + ' (' + a.ContentType + ', ' + a.Size + ' bytes)');
      link.href = '/api/v1/message/' + encodeURIComponent(m.ID) + '/part/' + encodeURIComponent(a.PartID);
      link.setAttribute('download', a.FileName || 'part-' + a.PartID);
      const li = el('li');
      li.append(link);
      list.append(li);
    }
    $('html-view').src = m.HTML ? '/view/' + encodeURIComponent(m.ID) + '.html' : 'about:blank';
    $('text-view').textContent = m.Text;
    $('m-download').href = '/api/v1/message/' + encodeURIComponent(m.ID) + '/raw?dl=1';
    const headers = await (await api('/api/v1/message/' + encodeURIComponent(id) + '/headers')).json();
    const hb = document.querySelector('#headers-view tbody');
    hb.replaceChildren();
    for (const [k, values] of Object.entries(headers)) for (const v of values) {
      const tr = el('tr');
      tr.append(el('td', k), el('td', v));
      hb.append(tr);
    }
    $('raw-view').textContent = await (await api('/api/v1/message/' + encodeURIComponent(id) + '/raw')).text();
    show(m.HTML ? 'html' : 'text');
  }

  for (const b of document.querySelectorAll('#tabs button[data-tab]')) b.addEventListener('click', () => show(b.dataset.tab));
  $('m-delete').addEventListener('click', async () => {
    if (!current) return;
    await api('/api/v1/messages', { method: 'DELETE', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ IDs: [current] }) });
  });
  $('delete-all').addEventListener('click', async () => {
    if (confirm('Delete every captured message?')) await api('/api/v1/messages', { method: 'DELETE' });
  });
  let timer;
  $('search').addEventListener('input', (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { query = e.target.value.trim(); load().catch((err) => status(String(err))); }, 250);
  });

  const events = new EventSource('/api/events');
  events.addEventListener('new', (e) => {
    // Under a search, the server decides what matches.
    if (query) { load().catch((err) => status(String(err))); return; }
    add(JSON.parse(e.data), true);
    status(rows.size + ' messages');
  });
  events.addEventListener('delete', (e) => { for (const id of JSON.parse(e.data).IDs) remove(id); status(rows.size + ' messages'); });
  events.addEventListener('clear', () => { for (const id of [...rows.keys()]) remove(id); status('0 messages'); });
  events.addEventListener('open', () => { load().catch((err) => status(String(err))); });
  events.addEventListener('error', () => status('reconnecting…'));
  refreshEmpty();
})();
`;
