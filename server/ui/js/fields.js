// The fields panel beside a search's lines: every field of the matches
// (`/api/v1/fields`) with how many lines have it and how many values it
// takes, its most frequent values with a bar for their share of the
// matches, and a numeric field's min, avg, p99 and max. A value filters the
// search in (the value itself) or out (−). On narrow screens the panel
// sits above the lines, collapsed.

import { h } from './dom.js';
import {
  fieldQueryNames, filterTerm, formatCount, formatNumber, NO_VALUE, valueText,
} from './text.js';

// Values listed per field.
export const FIELD_VALUES = 5;
const NARROW = '(max-width: 900px)';
const STATS = ['min', 'avg', 'p99', 'max'];

function statItem(name, value) {
  const known = typeof value === 'number';
  return h('span', { class: 'stat', 'data-stat': name, title: known ? String(value) : 'no value' },
    h('span', { class: 'stat-name' }, name), ' ',
    h('span', { class: 'stat-value' }, known ? formatNumber(value) : NO_VALUE));
}

function valueItem(queryName, { value, count }, total) {
  const text = valueText(value);
  const label = text === '' ? '""' : text;
  // An empty value has no words to search for.
  const filterable = queryName !== null && text !== '';
  const share = total > 0 ? count / total : 0;
  const fill = h('span', { class: 'value-fill' });
  fill.style.width = `${(share * 100).toFixed(2)}%`;
  const filter = (exclude) => ({
    type: 'button',
    'data-filter-field': queryName,
    'data-filter-value': text,
    'data-exclude': exclude ? 'true' : null,
  });
  return h('li', { class: 'value', 'data-count': count },
    filterable
      ? h('button', {
        ...filter(false), class: 'value-in', title: `Add filter ${filterTerm(queryName, text)}`,
        'aria-label': `Filter ${queryName} ${label}`,
      }, label)
      : h('span', { class: 'value-in', title: 'Not expressible in a query' }, label),
    h('span', { class: 'value-count', title: `${(share * 100).toFixed(1)} % of the matches` }, formatCount(count)),
    filterable
      ? h('button', {
        ...filter(true), class: 'value-out', title: `Add filter -${filterTerm(queryName, text)}`,
        'aria-label': `Exclude ${queryName} ${label}`,
      }, '−')
      : null,
    h('span', { class: 'value-bar', 'aria-hidden': 'true' }, fill));
}

function fieldItem(field, queryName, total) {
  const values = field.distinct === 1 ? 'value' : 'values';
  const lines = field.count === 1 ? 'line' : 'lines';
  const more = field.distinct - field.top.length;
  const renamed = queryName !== null && queryName !== field.name;
  const head = h('div', { class: 'field-head' },
    h('span', { class: 'field-title' },
      h('span', { class: 'field-name' }, field.name),
      renamed ? h('span', { class: 'field-query-name', title: 'Its name in a query' }, ` as ${queryName}`) : null),
    h('span', {
      class: 'field-stats',
      title: `${formatCount(field.count)} of ${formatCount(total)} matching lines have it; ` +
        `it takes ${formatCount(field.distinct)} different ${values}`,
    }, `${formatCount(field.count)} ${lines} · ${formatCount(field.distinct)} ${values}`));
  const numeric = field.numeric
    ? h('p', { class: 'field-numeric' }, STATS.map((name) => statItem(name, field.numeric[name])))
    : null;
  const top = h('ol', { class: 'field-values', 'aria-label': `Most frequent values of ${field.name}` },
    field.top.map((value) => valueItem(queryName, value, total)));
  return h('li', {
    class: 'field', 'data-field': field.name, 'data-count': field.count, 'data-distinct': field.distinct,
  }, head, numeric, top,
  more > 0 ? h('p', { class: 'field-more' }, `${formatCount(more)} more ${more === 1 ? 'value' : 'values'}`) : null);
}

export class FieldsPanel {
  // `onFilter(field, value, exclude)` adds `field:value` to the query, or
  // its negation when `exclude`.
  constructor(root, onFilter) {
    this.root = root;
    this.details = root.querySelector('details');
    this.total = root.querySelector('.fields-total');
    this.status = root.querySelector('[role="status"]');
    this.list = root.querySelector('.field-list');
    this.list.addEventListener('click', (event) => {
      const target = event.target instanceof Element ? event.target : null;
      const button = target && target.closest('button[data-filter-field]');
      if (button) onFilter(button.dataset.filterField, button.dataset.filterValue, button.dataset.exclude === 'true');
    });
    this.narrow = window.matchMedia(NARROW);
    this.onWidth = () => { this.details.open = !this.narrow.matches; };
    this.narrow.addEventListener('change', this.onWidth);
    this.onWidth();
  }

  setState(state, status = '') {
    this.root.dataset.state = state;
    this.root.setAttribute('aria-busy', String(state === 'loading'));
    this.status.textContent = status;
    this.status.hidden = !status;
  }

  // For a query with pipes, which answers a table.
  hide() {
    this.root.hidden = true;
    this.list.replaceChildren();
    this.total.textContent = '';
    delete this.root.dataset.count;
    this.setState('hidden');
  }

  // A new search started: the last answer stays, dimmed, until the next.
  loading() {
    this.root.hidden = false;
    this.setState('loading', this.list.childElementCount ? '' : 'Loading fields…');
  }

  // `answer` is the fields API's JSON.
  show(answer) {
    const queryNames = fieldQueryNames(answer.fields.map((field) => field.name));
    const items = document.createDocumentFragment();
    answer.fields.forEach((field, i) => items.append(fieldItem(field, queryNames[i], answer.count)));
    this.list.replaceChildren(items);
    this.root.dataset.count = String(answer.count);
    const n = answer.fields.length;
    this.total.textContent = `${formatCount(n)} ${n === 1 ? 'field' : 'fields'} of ${formatCount(answer.count)} ` +
      `${answer.count === 1 ? 'match' : 'matches'}`;
    this.setState('done', n ? '' : 'No fields: nothing matched in this range');
  }

  fail(message) {
    this.list.replaceChildren();
    this.total.textContent = '';
    delete this.root.dataset.count;
    this.setState('error', message);
  }

  dispose() {
    this.narrow.removeEventListener('change', this.onWidth);
  }
}
