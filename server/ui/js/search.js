// The search page: query box, time range, histogram, results with paging
// on scroll, the fields of the matches beside them, context, live tail,
// save. A query with pipes (a `|` outside quotes) answers a table instead,
// with a chart for a timechart.

import { api, ApiError } from './api.js';
import { openContext } from './context.js';
import { fromTemplate, h, isTyping, showError } from './dom.js';
import { FIELD_VALUES, FieldsPanel } from './fields.js';
import { Histogram, LineChart } from './histogram.js';
import {
  fromLocalInput, PRESETS, resolveBounds, stateFromUrl, toLocalInput, urlForState,
} from './range.js';
import { hitRows, statsTable, wireResults } from './results.js';
import { openSaveDialog } from './saved.js';
import { LiveTail } from './tail.js';
import {
  addTerm, charPositionToIndex, filterTerm, formatCount, formatDuration, formatShort, hasPipe,
} from './text.js';

const PAGE_SIZE = 500;
const HISTOGRAM_BUCKETS = 60;
// Live lines kept on screen; older ones are removed from the bottom.
const MAX_LIVE_ROWS = 5000;
const TAIL_REFUSED = 'Live tail follows new lines; a query with pipes (|) answers a table, ' +
  'so it cannot be tailed. Remove the pipes to follow the lines that match.';

export function renderSearchPage(main, { navigate, session }) {
  main.replaceChildren(fromTemplate('tpl-search'));
  const el = (id) => main.querySelector(`#${id}`);
  const form = el('search-form');
  const input = el('q');
  const rangeSelect = el('range');
  const customRange = el('custom-range');
  const fromInput = el('from');
  const toInput = el('to');
  const count = el('count');
  const rangeLabel = el('range-label');
  const results = el('results');
  const more = el('more');
  const errorBox = el('query-error');
  const searchError = el('search-error');
  const tailButton = el('tail-toggle');
  const pauseButton = el('tail-pause');
  const tailStatus = el('tail-status');
  const statsView = el('stats');
  const statsChart = el('stats-chart');
  const statsNote = el('stats-note');
  const zoomHint = el('zoom-hint');

  let state = stateFromUrl();
  let generation = 0; // answers of older searches are ignored
  let controller = null;
  let page = null; // {fromMs, toMs, cursor, loading, shown}

  const zoomTo = (fromMs, toMs) => {
    state = { ...state, range: 'custom', fromMs, toMs };
    syncControls();
    search();
  };
  const histogram = new Histogram(el('histogram'), zoomTo);
  const lineChart = new LineChart(el('stats-plot'), el('stats-legend'), zoomTo);
  const fields = new FieldsPanel(el('fields'), addFilter);

  function syncControls() {
    input.value = state.q;
    rangeSelect.value = state.range;
    customRange.hidden = state.range !== 'custom';
    if (state.range === 'custom') {
      fromInput.value = toLocalInput(state.fromMs);
      toInput.value = toLocalInput(state.toMs);
    }
  }

  function readControls() {
    const range = rangeSelect.value;
    if (range !== 'custom') return { q: input.value.trim(), range, fromMs: null, toMs: null };
    const fromMs = fromLocalInput(fromInput.value);
    const toMs = fromLocalInput(toInput.value);
    if (fromMs === null || toMs === null || fromMs >= toMs) {
      throw new Error('Custom range: choose a start before the end.');
    }
    return { q: input.value.trim(), range, fromMs, toMs };
  }

  function showQueryError(error) {
    const query = input.value;
    const hasPosition = error.position !== null && error.position !== undefined;
    errorBox.hidden = false;
    el('query-error-message').textContent = error.message;
    errorBox.dataset.position = hasPosition ? String(error.position) : '';
    const echo = el('query-error-echo');
    if (hasPosition) {
      const at = charPositionToIndex(query, error.position);
      const next = at < query.length ? at + (query.codePointAt(at) > 0xffff ? 2 : 1) : at;
      const marked = h('mark', { 'data-position': error.position }, at < query.length ? query.slice(at, next) : ' ');
      const caret = h('span', { class: 'caret' }, `\n${' '.repeat([...query.slice(0, at)].length)}^`);
      echo.replaceChildren(query.slice(0, at), marked, query.slice(next), caret);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.setSelectionRange(at, next);
    } else {
      echo.replaceChildren();
    }
  }

  function clearErrors() {
    errorBox.hidden = true;
    input.removeAttribute('aria-invalid');
    showError(searchError, '');
  }

  function setCount(n, pending = false) {
    count.dataset.count = pending ? '' : String(n);
    delete count.dataset.groups;
    count.textContent = pending ? 'Searching…' : `${formatCount(n)} ${n === 1 ? 'match' : 'matches'}`;
  }

  // Lines or a table: the histogram and the results, or the stats view.
  function showView(piped) {
    statsView.hidden = !piped;
    el('histogram').hidden = piped;
    zoomHint.hidden = piped;
    zoomHint.textContent = piped ? 'Drag across the chart to zoom in' : 'Drag across the bars to zoom in';
    results.hidden = piped;
    more.hidden = piped;
    tailButton.title = piped ? 'Live tail follows lines; a query with pipes answers a table' : '';
  }

  function clearTable() {
    statsTable(el('stats-table'), { columns: [], rows: [] });
    statsChart.hidden = true;
    lineChart.clear();
    showError(statsNote, '');
  }

  function showTable(answer, fromMs, toMs) {
    count.dataset.count = String(answer.count);
    count.dataset.groups = String(answer.groups);
    count.textContent = `${formatCount(answer.count)} ${answer.count === 1 ? 'match' : 'matches'} · ` +
      `${formatCount(answer.groups)} ${answer.groups === 1 ? 'group' : 'groups'}`;
    statsTable(el('stats-table'), answer);
    const timechart = answer.columns.some((c) => c.kind === 'time');
    statsChart.hidden = !timechart;
    zoomHint.hidden = !timechart;
    if (timechart) lineChart.show(answer, fromMs, toMs); else lineChart.clear();
    const notes = [];
    if (answer.interval_ms) notes.push(`Buckets of ${formatDuration(answer.interval_ms / 1000)}`);
    if (answer.rows.length < answer.groups) {
      notes.push(`Showing ${formatCount(answer.rows.length)} of ${formatCount(answer.groups)} groups`);
    }
    if (answer.estimated && answer.estimated.length) {
      notes.push(`Estimated within 1 %: ${answer.estimated.join(', ')}`);
    }
    if (answer.rows.length === 0) notes.push('No rows: nothing matched in this range');
    showError(statsNote, notes.join(' · '));
  }

  async function search({ push = true } = {}) {
    generation += 1;
    const mine = generation;
    if (controller) controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    clearErrors();
    if (push) navigate(urlForState(state), { replace: false, render: false });
    const { fromMs, toMs } = resolveBounds(state);
    rangeLabel.textContent = state.range === 'custom'
      ? `${formatShort(fromMs, true)} – ${formatShort(toMs, true)}`
      : `${PRESETS[state.range].label} (until ${formatShort(toMs, true)})`;
    page = { fromMs, toMs, cursor: null, loading: true, shown: 0 };
    const piped = hasPipe(state.q);
    if (piped && tail.running) refuseTail();
    else if (!piped) clearTailRefusal();
    showView(piped);
    if (piped) fields.hide(); else fields.loading();
    setCount(0, true);
    results.setAttribute('aria-busy', 'true');
    const params = { q: state.q, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() };
    try {
      if (piped) {
        const answer = await api('/api/v1/stats', { params, signal });
        if (mine !== generation) return;
        results.replaceChildren();
        histogram.clear();
        showTable(answer, fromMs, toMs);
        return;
      }
      const [found, buckets] = await Promise.all([
        api('/api/v1/search', { params: { ...params, limit: PAGE_SIZE }, signal }),
        api('/api/v1/histogram', { params: { ...params, buckets: HISTOGRAM_BUCKETS }, signal }),
      ]);
      if (mine !== generation) return;
      clearTable();
      setCount(found.count);
      histogram.show(buckets, fromMs, toMs);
      results.replaceChildren(hitRows(found.hits));
      page.cursor = found.cursor;
      page.shown = found.hits.length;
      loadFields(params, mine, signal);
      if (tail.running) setTail(true);
    } catch (error) {
      if (mine !== generation || error.name === 'AbortError') return;
      results.replaceChildren();
      histogram.clear();
      clearTable();
      fields.hide();
      count.textContent = '';
      delete count.dataset.count;
      if (error instanceof ApiError && error.status === 400) showQueryError(error);
      else showError(searchError, `Search failed: ${error.message}`);
    } finally {
      if (mine === generation) {
        page.loading = false;
        results.setAttribute('aria-busy', 'false');
        updateMore();
      }
    }
  }

  // Asked once the lines are shown, so its pass over every match never
  // delays them; a newer search aborts it.
  async function loadFields(params, mine, signal) {
    try {
      const answer = await api('/api/v1/fields', { params: { ...params, top: FIELD_VALUES }, signal });
      if (mine === generation) fields.show(answer);
    } catch (error) {
      if (mine === generation && error.name !== 'AbortError') fields.fail(`Fields unavailable: ${error.message}`);
    }
  }

  function updateMore() {
    if (!page || page.loading) return;
    if (page.cursor) more.textContent = `Showing ${formatCount(page.shown)}; scroll for older lines`;
    else more.textContent = page.shown ? 'No older lines in this range' : '';
  }

  async function loadOlder() {
    if (!page || page.loading || !page.cursor) return;
    const mine = generation;
    page.loading = true;
    more.textContent = 'Loading older lines…';
    try {
      const found = await api('/api/v1/search', {
        params: {
          q: state.q, from: new Date(page.fromMs).toISOString(), to: new Date(page.toMs).toISOString(),
          limit: PAGE_SIZE, cursor: page.cursor,
        },
        signal: controller ? controller.signal : undefined,
      });
      if (mine !== generation) return;
      results.append(hitRows(found.hits));
      page.cursor = found.cursor;
      page.shown += found.hits.length;
    } catch (error) {
      if (mine === generation && error.name !== 'AbortError') showError(searchError, `Loading older lines failed: ${error.message}`);
    } finally {
      if (mine === generation) {
        page.loading = false;
        updateMore();
        // Still visible (a tall screen): keep loading.
        requestAnimationFrame(() => { if (isVisible(more)) loadOlder(); });
      }
    }
  }

  function isVisible(node) {
    const rect = node.getBoundingClientRect();
    return rect.top < window.innerHeight && rect.bottom >= 0;
  }

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadOlder();
  }, { rootMargin: '600px 0px' });
  observer.observe(more);

  // Adds `field:value` to the query, or `-field:value` when `exclude`.
  function addFilter(field, value, exclude = false) {
    state = { ...state, q: addTerm(input.value, `${exclude ? '-' : ''}${filterTerm(field, value)}`) };
    syncControls();
    search();
  }

  wireResults(results, { onFilter: addFilter, onOpen: (id) => openContext(id, addFilter) });

  // Live tail.
  const tail = new LiveTail({
    onHits: (hits) => {
      const fragment = document.createDocumentFragment();
      for (let i = hits.length - 1; i >= 0; i -= 1) fragment.append(hitRows([hits[i]], { live: true }));
      results.prepend(fragment);
      while (results.childElementCount > MAX_LIVE_ROWS) results.lastElementChild.remove();
    },
    onState: (tailState, detail) => {
      tailStatus.hidden = tailState === 'stopped';
      tailStatus.classList.toggle('paused', tailState === 'paused');
      tailStatus.classList.remove('refused');
      tailStatus.dataset.state = tailState;
      const received = `${formatCount(tail.received)} new ${tail.received === 1 ? 'line' : 'lines'}`;
      tailStatus.textContent = {
        connecting: 'Live tail: connecting…',
        live: `Live tail: following new lines matching the query — ${received}`,
        paused: `Live tail paused — ${formatCount(detail || 0)} waiting; press Resume`,
        error: `Live tail: ${detail}`,
        stopped: '',
      }[tailState];
    },
  });

  function setTail(on) {
    tailButton.setAttribute('aria-pressed', String(on));
    pauseButton.hidden = !on;
    pauseButton.setAttribute('aria-pressed', 'false');
    pauseButton.textContent = 'Pause';
    if (on) tail.start(state.q); else tail.stop();
  }

  // Tail answers lines, so a query with pipes is refused with a message.
  function refuseTail() {
    setTail(false);
    tailStatus.hidden = false;
    tailStatus.dataset.state = 'refused';
    tailStatus.classList.add('refused');
    tailStatus.textContent = TAIL_REFUSED;
  }

  function clearTailRefusal() {
    if (tailStatus.dataset.state !== 'refused') return;
    tailStatus.hidden = true;
    tailStatus.dataset.state = 'stopped';
    tailStatus.classList.remove('refused');
    tailStatus.textContent = '';
  }

  tailButton.addEventListener('click', () => {
    const on = tailButton.getAttribute('aria-pressed') !== 'true';
    if (on && hasPipe(state.q)) refuseTail(); else setTail(on);
  });
  pauseButton.addEventListener('click', () => {
    const pausing = pauseButton.getAttribute('aria-pressed') !== 'true';
    pauseButton.setAttribute('aria-pressed', String(pausing));
    pauseButton.textContent = pausing ? 'Resume' : 'Pause';
    if (pausing) tail.pause(); else tail.resume();
  });

  // Controls.
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    try {
      state = readControls();
    } catch (error) {
      showError(searchError, error.message);
      return;
    }
    search();
  });
  rangeSelect.addEventListener('change', () => {
    if (rangeSelect.value === 'custom') {
      const { fromMs, toMs } = resolveBounds(state);
      fromInput.value = toLocalInput(fromMs);
      toInput.value = toLocalInput(toMs);
      customRange.hidden = false;
      fromInput.focus();
      return;
    }
    customRange.hidden = true;
    state = { ...state, q: input.value.trim(), range: rangeSelect.value, fromMs: null, toMs: null };
    search();
  });
  input.addEventListener('input', () => {
    if (!errorBox.hidden) { errorBox.hidden = true; input.removeAttribute('aria-invalid'); }
  });
  el('help-toggle').addEventListener('click', (event) => {
    const help = el('query-help');
    help.hidden = !help.hidden;
    event.currentTarget.setAttribute('aria-expanded', String(!help.hidden));
  });
  el('save-search').addEventListener('click', () => {
    try {
      openSaveDialog(readControls());
    } catch (error) {
      showError(searchError, error.message);
    }
  });
  const createAlert = el('create-alert');
  if (!session.scopes.includes('admin')) {
    for (const button of [el('save-search'), createAlert]) {
      button.disabled = true;
      button.title = 'Needs a token with the admin scope';
    }
  }
  createAlert.addEventListener('click', () => {
    let current;
    try {
      current = readControls();
    } catch (error) {
      showError(searchError, error.message);
      return;
    }
    navigate(`/alerts?${new URLSearchParams({ new: '1', q: current.q, range: current.range === 'custom' ? '' : current.range })}`);
  });

  const onKey = (event) => {
    if (event.key === '/' && !isTyping(event) && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      input.focus();
      input.select();
    }
  };
  document.addEventListener('keydown', onKey);

  syncControls();
  search({ push: false });

  return {
    // Back/forward within the search page.
    reload() {
      state = stateFromUrl();
      syncControls();
      search({ push: false });
    },
    dispose() {
      document.removeEventListener('keydown', onKey);
      observer.disconnect();
      fields.dispose();
      tail.stop();
      if (controller) controller.abort();
    },
  };
}
