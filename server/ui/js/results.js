// Result lines: one <li> per hit, built into a DocumentFragment so a page
// of hundreds of lines costs one insertion and one layout. A query with
// pipes answers a table instead (`statsTable`).

import { h } from './dom.js';
import { byteRangesToStringRanges, formatNumber, formatTimestamp, NO_VALUE } from './text.js';

// The message with its highlighted ranges wrapped in <mark>.
export function messageNodes(message, highlights) {
  const ranges = byteRangesToStringRanges(message, highlights);
  const nodes = [];
  let at = 0;
  for (const [start, end] of ranges) {
    if (start > at) nodes.push(message.slice(at, start));
    nodes.push(h('mark', {}, message.slice(start, end)));
    at = end;
  }
  if (at < message.length) nodes.push(message.slice(at));
  return nodes;
}

function chip(kind, field, value, label, extraClass = '') {
  return h('button', {
    type: 'button', class: `chip ${kind} ${extraClass}`.trim(),
    'data-filter-field': field, 'data-filter-value': value,
    title: `Add filter ${field}:${value}`, 'aria-label': `Filter ${field} ${value}`,
  }, label);
}

// One hit as a row. `withOpen`: a button that opens the line's context.
export function hitRow(hit, { withOpen = true, live = false, focus = false } = {}) {
  const severity = hit.severity || '';
  const chips = h('span', { class: 'chips' },
    severity ? chip('sev', 'severity', severity, severity, `sev-${severity}`) : null,
    chip('host', 'host', hit.host, hit.host),
    chip('source', 'source', hit.source, hit.source.split('/').pop() || hit.source),
    hit.app ? chip('app', 'app', hit.app, hit.app) : null);
  const classes = ['hit'];
  if (live) classes.push('live');
  if (focus) classes.push('focus');
  return h('li', { class: classes.join(' '), 'data-id': hit.id, 'data-severity': severity || null },
    withOpen ? h('button', { type: 'button', class: 'open', 'aria-label': 'Show context', title: 'Lines around this one' }, '⋯') : null,
    h('time', { datetime: hit.timestamp }, formatTimestamp(hit.timestamp)),
    chips,
    h('span', { class: 'msg' }, messageNodes(hit.message, hit.highlights)));
}

export function hitRows(hits, options) {
  const fragment = document.createDocumentFragment();
  for (const hit of hits) fragment.append(hitRow(hit, options));
  return fragment;
}

// Wires the list's clicks once: chips call `onFilter(field, value)`, the
// context button or a click on the line (not a text selection) calls
// `onOpen(id)`.
export function wireResults(list, { onFilter, onOpen }) {
  list.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const chipEl = target.closest('.chip');
    if (chipEl) {
      onFilter(chipEl.dataset.filterField, chipEl.dataset.filterValue);
      return;
    }
    const row = target.closest('.hit');
    if (!row || !onOpen) return;
    if (target.closest('.open') || (target.closest('.msg') && !String(window.getSelection()))) {
      onOpen(row.dataset.id);
    }
  });
}

function statsCell(column, value) {
  if (value === null || value === undefined) {
    return h('td', { class: column.kind === 'aggregate' ? 'num none' : 'none', title: 'no value' }, NO_VALUE);
  }
  if (column.kind === 'time') {
    return h('td', { class: 'time' }, h('time', { datetime: value }, formatTimestamp(value)));
  }
  if (typeof value !== 'number') return h('td', {}, String(value));
  if (column.kind === 'group') return h('td', { class: 'num' }, String(value));
  const shown = formatNumber(value);
  return h('td', { class: 'num', title: shown === String(value) ? null : String(value) }, shown);
}

// The stats API's answer as the rows of `table`: a header of the column
// names, one row per answer row.
export function statsTable(table, answer) {
  const estimated = new Set(answer.estimated || []);
  const head = h('tr', {}, answer.columns.map((column) => h('th', {
    scope: 'col', class: column.kind === 'aggregate' ? 'num' : null, 'data-kind': column.kind,
    'data-estimated': estimated.has(column.name) ? '1' : null,
    title: estimated.has(column.name) ? 'Estimated for large groups: within 1 % of the exact value' : null,
  }, column.name)));
  const body = document.createDocumentFragment();
  for (const row of answer.rows) {
    body.append(h('tr', {}, answer.columns.map((column, i) => statsCell(column, row[i]))));
  }
  table.replaceChildren(h('thead', {}, head), h('tbody', {}, body));
}
