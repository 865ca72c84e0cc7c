// Alerts: rules over saved searches, their state, delivery history and a
// test send. `/api/v1/alerts`; reads need `read`, writes `admin`. A server
// without the API answers 404, said so plainly.

import { api, isUnavailable } from './api.js';
import { fromTemplate, h, showError, toast } from './dom.js';
import { PRESETS } from './range.js';
import { listSearches, SEARCHES_PATH } from './saved.js';
import { formatDuration, formatShort } from './text.js';

const ALERTS_PATH = '/api/v1/alerts';
const UNAVAILABLE = 'Alerts are not available on this server.';

function ruleSummary(alert) {
  const every = `every ${formatDuration(alert.interval_secs)}`;
  const window = formatDuration(alert.window_secs);
  switch (alert.kind) {
    case 'threshold': return `≥ ${alert.threshold} matches in ${window}, checked ${every}`;
    case 'absence': return `no match in ${window}, checked ${every}`;
    default: return `any match, checked ${every}`;
  }
}

function channelSummary(channel) {
  if (channel.type === 'email') return `email ${channel.to.join(', ')}`;
  let host = channel.url;
  try { host = new URL(channel.url).host; } catch { /* show it whole */ }
  return `webhook ${host} (${channel.format})`;
}

// What one delivery attempt came to: the HTTP status of a webhook, or
// whether a mail went out, with the error if there was one.
function attemptResult(attempt) {
  const outcome = attempt.status_code !== null && attempt.status_code !== undefined
    ? `HTTP ${attempt.status_code}`
    : attempt.error ? 'failed' : 'sent';
  return attempt.error ? `${outcome}: ${attempt.error}` : outcome;
}

function stateBadge(alert) {
  if (!alert.enabled) return h('span', { class: 'badge disabled' }, 'disabled');
  if (alert.muted_until_ms && alert.muted_until_ms > Date.now()) {
    return h('span', { class: 'badge muted', title: `until ${new Date(alert.muted_until_ms).toLocaleString()}` }, 'muted');
  }
  const status = (alert.state && alert.state.status) || 'ok';
  return h('span', { class: `badge ${status}` }, status);
}

export function renderAlertsPage(main, { navigate, session }) {
  main.replaceChildren(fromTemplate('tpl-alerts'));
  const status = main.querySelector('#alerts-status');
  const table = main.querySelector('#alerts-table');
  const rows = main.querySelector('#alerts-rows');
  const editor = main.querySelector('#alert-editor');
  const history = main.querySelector('#history');
  const historyList = main.querySelector('#history-list');
  const newButton = main.querySelector('#new-alert');
  const canWrite = session.scopes.includes('admin');
  let searches = [];
  let alerts = [];
  let historyFor = null;

  const searchById = (id) => searches.find((s) => s.id === id);

  function renderRows() {
    table.hidden = alerts.length === 0;
    rows.replaceChildren(...alerts.map((alert) => {
      const search = searchById(alert.search_id);
      const state = alert.state || {};
      const checked = state.last_evaluated_ms ? formatShort(state.last_evaluated_ms, true) : 'never';
      const button = (label, onClick, extra = {}) => {
        const b = h('button', { type: 'button', 'aria-label': `${label} ${alert.name}`, ...extra }, label);
        b.addEventListener('click', onClick);
        return b;
      };
      return h('tr', { 'data-id': alert.id, class: historyFor === alert.id ? 'selected' : '' },
        h('td', {}, stateBadge(alert)),
        h('td', {}, alert.name),
        h('td', { class: 'query' }, search ? `${search.name}: ${search.query || '(everything)'}` : `search #${alert.search_id}`),
        h('td', {}, ruleSummary(alert)),
        h('td', {}, alert.channels.map(channelSummary).join('; ') || '—'),
        h('td', {}, checked,
          state.last_fired_ms ? h('div', { class: 'hint' }, `fired ${formatShort(state.last_fired_ms, true)}`) : null,
          state.last_error ? h('div', { class: 'error' }, state.last_error) : null),
        h('td', { class: 'row-actions' },
          button('History', () => showHistory(alert)),
          button('Send test', () => sendTest(alert), { disabled: !canWrite }),
          button('Edit', () => openEditor(alert), { disabled: !canWrite }),
          button('Delete', (event) => remove(alert, event.currentTarget), { disabled: !canWrite, class: 'danger' })));
    }));
  }

  async function load() {
    try {
      [alerts, searches] = await Promise.all([
        api(ALERTS_PATH).then((a) => a.alerts),
        listSearches().catch((e) => { if (isUnavailable(e)) return []; throw e; }),
      ]);
      renderRows();
      status.textContent = alerts.length ? '' : 'No alerts yet. Create one from a search with “Create alert”.';
      newButton.hidden = !canWrite;
      return true;
    } catch (e) {
      status.textContent = isUnavailable(e) ? UNAVAILABLE : `Cannot load alerts: ${e.message}`;
      return false;
    }
  }

  async function showHistory(alert) {
    historyFor = alert.id;
    renderRows();
    history.hidden = false;
    main.querySelector('#history-title').textContent = `Delivery history: ${alert.name}`;
    historyList.replaceChildren(h('li', { class: 'hint' }, 'Loading…'));
    try {
      const answer = await api(`${ALERTS_PATH}/${alert.id}/history`);
      if (historyFor !== alert.id) return;
      if (!answer.deliveries.length) {
        historyList.replaceChildren(h('li', { class: 'hint' }, 'Nothing delivered yet.'));
        return;
      }
      historyList.replaceChildren(...answer.deliveries.map((d) => h('li', { 'data-delivery-id': d.delivery_id, 'data-status': d.status },
        h('span', { class: `badge ${d.status}` }, d.status), ' ',
        h('strong', {}, d.event), ` · ${d.count} ${d.count === 1 ? 'line' : 'lines'} · ${d.channel} · `,
        h('time', { datetime: new Date(d.created_at_ms).toISOString() }, formatShort(d.created_at_ms, true)),
        d.attempts.length ? h('ol', { class: 'attempts', 'aria-label': 'Attempts' }, d.attempts.map((a) => h('li', {},
          `${formatShort(a.at_ms, true)} → ${attemptResult(a)}`))) : null)));
    } catch (e) {
      historyList.replaceChildren(h('li', { class: 'error' }, `Cannot load history: ${e.message}`));
    }
  }

  async function sendTest(alert) {
    try {
      const answer = await api(`${ALERTS_PATH}/${alert.id}/test`, { method: 'POST' });
      toast(`Test sent to ${alert.channels.length} ${alert.channels.length === 1 ? 'channel' : 'channels'} (delivery ${answer.delivery_id})`);
      showHistory(alert);
    } catch (e) {
      toast(`Cannot send a test: ${e.message}`, { bad: true });
    }
  }

  async function remove(alert, button) {
    if (button.dataset.confirm !== '1') {
      button.dataset.confirm = '1';
      button.textContent = 'Confirm delete';
      return;
    }
    try {
      await api(`${ALERTS_PATH}/${alert.id}`, { method: 'DELETE' });
      toast(`Deleted alert “${alert.name}”`);
      if (historyFor === alert.id) { history.hidden = true; historyFor = null; }
      await load();
    } catch (e) {
      toast(`Cannot delete: ${e.message}`, { bad: true });
    }
  }

  function addChannel(container, channel) {
    const fragment = fromTemplate(channel.type === 'email' ? 'tpl-channel-email' : 'tpl-channel-webhook');
    const fieldset = fragment.querySelector('fieldset');
    if (channel.type === 'email') {
      fieldset.querySelector('[name="to"]').value = (channel.to || []).join(', ');
    } else {
      fieldset.querySelector('[name="url"]').value = channel.url || '';
      fieldset.querySelector('[name="format"]').value = channel.format || 'loghound';
      fieldset.querySelector('[name="secret"]').value = channel.secret || '';
    }
    fieldset.querySelector('[data-remove]').addEventListener('click', () => fieldset.remove());
    container.append(fieldset);
    fieldset.querySelector('input').focus();
  }

  function readChannels(container) {
    return [...container.querySelectorAll('.channel')].map((fieldset) => {
      if (fieldset.dataset.type === 'email') {
        const to = fieldset.querySelector('[name="to"]').value.split(/[\s,;]+/).filter(Boolean);
        if (!to.length || to.some((a) => !/^[^@\s]+@[^@\s]+$/.test(a))) {
          throw new Error('Email: give one or more addresses like oncall@example.com.');
        }
        return { type: 'email', to };
      }
      const url = fieldset.querySelector('[name="url"]').value.trim();
      if (!/^https?:\/\/\S+$/.test(url)) throw new Error('Webhook: give an http:// or https:// URL.');
      const channel = { type: 'webhook', url, format: fieldset.querySelector('[name="format"]').value };
      const secret = fieldset.querySelector('[name="secret"]').value;
      if (secret) channel.secret = secret;
      return channel;
    });
  }

  // `alert`: the rule to edit, or null for a new one; `draft`: {q, range}
  // of the search page for "Create alert".
  function openEditor(alert, draft = null) {
    editor.replaceChildren(fromTemplate('tpl-alert-form'));
    const form = editor.querySelector('#alert-form');
    const field = (name) => form.querySelector(`#alert-${name}`);
    const error = field('error');
    form.querySelector('#alert-form-title').textContent = alert ? `Edit alert “${alert.name}”` : 'New alert';
    const select = field('search');
    const options = searches.map((s) => h('option', { value: s.id }, `${s.name} — ${s.query || '(everything)'}`));
    let draftOption = null;
    if (draft) {
      const existing = searches.find((s) => s.query === draft.q);
      if (existing) {
        options.find((o) => o.value === String(existing.id)).selected = true;
      } else {
        draftOption = h('option', { value: 'draft', selected: true }, `New saved search: ${draft.q || '(everything)'}`);
        options.unshift(draftOption);
      }
    }
    select.replaceChildren(...options);
    if (alert) select.value = String(alert.search_id);
    if (!options.length) showError(error, 'Save a search first, or start from the search page with “Create alert”.');

    const a = alert || { kind: 'any', interval_secs: 60, window_secs: 300, threshold: 1, samples: 5, enabled: true, channels: [] };
    field('name').value = alert ? alert.name : (draft && draft.q ? `Lines matching ${draft.q}`.slice(0, 200) : '');
    form.querySelector(`input[name="kind"][value="${a.kind}"]`).checked = true;
    field('interval').value = String(a.interval_secs);
    if (!field('window').querySelector(`option[value="${a.window_secs}"]`)) {
      field('window').append(h('option', { value: a.window_secs }, formatDuration(a.window_secs)));
    }
    field('window').value = String(a.window_secs);
    field('threshold').value = String(a.threshold);
    field('samples').value = String(a.samples);
    field('enabled').checked = a.enabled;
    const channels = form.querySelector('#alert-channels');
    for (const channel of a.channels) addChannel(channels, channel);
    const syncKind = () => {
      const kind = form.querySelector('input[name="kind"]:checked').value;
      field('threshold').disabled = kind !== 'threshold';
      field('window').disabled = kind === 'any';
    };
    form.querySelectorAll('input[name="kind"]').forEach((r) => r.addEventListener('change', syncKind));
    syncKind();
    form.querySelector('#add-email').addEventListener('click', () => addChannel(channels, { type: 'email' }));
    form.querySelector('#add-webhook').addEventListener('click', () => addChannel(channels, { type: 'webhook' }));
    form.querySelector('#alert-cancel').addEventListener('click', () => {
      editor.replaceChildren();
      navigate('/alerts', { replace: true, render: false });
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      showError(error, '');
      let body;
      try {
        const name = field('name').value.trim();
        if (!name) throw new Error('Give the alert a name.');
        const threshold = Number(field('threshold').value);
        const samples = Number(field('samples').value);
        if (!Number.isInteger(threshold) || threshold < 1) throw new Error('Threshold: a whole number, at least 1.');
        if (!Number.isInteger(samples) || samples < 0) throw new Error('Sample lines: a whole number, 0 or more.');
        const channelList = readChannels(channels);
        if (!channelList.length) throw new Error('Add at least one channel (email or webhook).');
        if (!select.value) throw new Error('Choose a saved search.');
        body = {
          search_id: null, name, kind: form.querySelector('input[name="kind"]:checked').value,
          interval_secs: Number(field('interval').value), window_secs: Number(field('window').value),
          threshold, samples, enabled: field('enabled').checked,
          muted_until_ms: alert ? alert.muted_until_ms ?? null : null, channels: channelList,
        };
      } catch (e) {
        showError(error, e.message);
        return;
      }
      try {
        if (select.value === 'draft') {
          const range = draft.range in PRESETS ? draft.range : null;
          const saved = await api(SEARCHES_PATH, { method: 'POST', body: { name: body.name, query: draft.q, range } });
          searches.push(saved);
          body.search_id = saved.id;
          draftOption.value = String(saved.id);
        } else {
          body.search_id = Number(select.value);
        }
        const saved = alert
          ? await api(`${ALERTS_PATH}/${alert.id}`, { method: 'PUT', body })
          : await api(ALERTS_PATH, { method: 'POST', body });
        toast(alert ? `Saved alert “${saved.name}”` : `Created alert “${saved.name}”`);
        editor.replaceChildren();
        navigate('/alerts', { replace: true, render: false });
        await load();
      } catch (e) {
        showError(error, isUnavailable(e) ? UNAVAILABLE : `Cannot save: ${e.message}`);
      }
    });
    field('name').focus();
  }

  newButton.addEventListener('click', () => openEditor(null));

  (async () => {
    status.textContent = 'Loading…';
    const ok = await load();
    const params = new URLSearchParams(window.location.search);
    if (ok && canWrite && params.get('new') === '1') {
      openEditor(null, { q: params.get('q') || '', range: params.get('range') || null });
    }
  })();
  return { dispose() {} };
}
