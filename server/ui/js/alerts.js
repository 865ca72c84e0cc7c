// Alerts: rules over saved searches, their state, delivery history, a
// test send and muting. Every `/api/v1/alerts` route needs the `admin`
// scope (rules hold webhook secrets and email addresses); without it the
// page says so and asks the server nothing.

import { api } from './api.js';
import { fromTemplate, h, showError, toast } from './dom.js';
import { PRESETS } from './range.js';
import { listSearches, SEARCHES_PATH } from './saved.js';
import { formatDuration, formatShort } from './text.js';

const ALERTS_PATH = '/api/v1/alerts';
const NEEDS_ADMIN = 'Alerts need a token with the admin scope: rules hold webhook secrets and '
  + 'email addresses. Sign in with an admin token to see and change them.';
const MAX_SAMPLES = 50;
const MUTE_MS = 60 * 60 * 1000;
// While a delivery of the shown history is pending, it is asked for again
// this often.
const HISTORY_POLL_MS = 2000;

// [what fires it, when it is checked].
function ruleSummary(alert) {
  const every = formatDuration(alert.interval_secs);
  const window = formatDuration(alert.window_secs);
  switch (alert.kind) {
    case 'threshold': return [`≥ ${alert.threshold} matches in ${window}`, `checked every ${every}`];
    case 'absence': return [`no match in ${window}`, `checked every ${every}`];
    case 'metric': {
      const limit = alert.above !== undefined && alert.above !== null ? `above ${alert.above}` : `below ${alert.below}`;
      const firing = (alert.state.firing_groups || []).length;
      return [`a group's value ${limit} over ${window}${firing ? ` (${firing} firing)` : ''}`, `checked every ${every}`];
    }
    default: return ['any new match', `notified at most every ${every}`];
  }
}

function channelSummary(channel) {
  if (channel.type === 'email') return `email ${channel.to.join(', ')}`;
  let host = channel.url;
  try { host = new URL(channel.url).host; } catch { /* show it whole */ }
  return `webhook ${host} (${channel.format}${channel.secret ? ', signed' : ''})`;
}

// What one delivery attempt came to: the receiver's HTTP status or the
// mail relay's SMTP reply, or how it ended without one, and the error.
function attemptResult(attempt, channel) {
  const code = attempt.status_code;
  let text;
  if (attempt.outcome === 'sending') text = 'sending…';
  else if (attempt.outcome === 'unknown') text = 'outcome unknown';
  else if (code !== null && code !== undefined) text = `${channel.startsWith('email') ? 'SMTP' : 'HTTP'} ${code}`;
  else text = attempt.outcome === 'delivered' ? 'sent' : 'failed';
  return attempt.error ? `${text}: ${attempt.error}` : text;
}

const isMuted = (alert) => Boolean(alert.muted_until_ms && alert.muted_until_ms > Date.now());

function stateBadge(alert) {
  if (!alert.enabled) return h('span', { class: 'badge disabled', 'data-state': 'disabled' }, 'disabled');
  if (isMuted(alert)) {
    return h('span', {
      class: 'badge muted', 'data-state': 'muted', title: `until ${new Date(alert.muted_until_ms).toLocaleString()}`,
    }, 'muted');
  }
  const status = alert.state.status;
  return h('span', { class: `badge ${status}`, 'data-state': status }, status);
}

// The body `PUT /api/v1/alerts/{id}` takes, from a rule as listed.
function ruleInput(alert, changes = {}) {
  return {
    search_id: alert.search_id, name: alert.name, kind: alert.kind, interval_secs: alert.interval_secs,
    window_secs: alert.window_secs, threshold: alert.threshold, samples: alert.samples, enabled: alert.enabled,
    muted_until_ms: alert.muted_until_ms ?? null, channels: alert.channels,
    above: alert.above ?? null, below: alert.below ?? null, ...changes,
  };
}

function deliveryItem(delivery) {
  const matches = delivery.event === 'test'
    ? null
    : ` · ${delivery.count} ${delivery.count === 1 ? 'match' : 'matches'}`;
  return h('li', { 'data-delivery-id': delivery.delivery_id, 'data-status': delivery.status, 'data-event': delivery.event },
    h('span', { class: `badge ${delivery.status}` }, delivery.status), ' ',
    h('strong', {}, delivery.event), matches, ` · ${delivery.channel} · `,
    h('time', { datetime: new Date(delivery.created_at_ms).toISOString() }, formatShort(delivery.created_at_ms, true)),
    delivery.attempts.length
      ? h('ol', { class: 'attempts', 'aria-label': 'Attempts' }, delivery.attempts.map((a) => h('li', {
        'data-outcome': a.outcome, 'data-status-code': a.status_code ?? '',
      }, `${formatShort(a.at_ms, true)} → ${attemptResult(a, delivery.channel)}`)))
      : null);
}

export function renderAlertsPage(main, { navigate, session }) {
  main.replaceChildren(fromTemplate('tpl-alerts'));
  const status = main.querySelector('#alerts-status');
  const table = main.querySelector('#alerts-table');
  const rows = main.querySelector('#alerts-rows');
  const editor = main.querySelector('#alert-editor');
  const history = main.querySelector('#history');
  const historyList = main.querySelector('#history-list');
  const historyUpdated = main.querySelector('#history-updated');
  const newButton = main.querySelector('#new-alert');
  const refreshButton = main.querySelector('#refresh-alerts');
  if (!session.scopes.includes('admin')) {
    status.textContent = NEEDS_ADMIN;
    status.dataset.needsAdmin = '1';
    return { dispose() {} };
  }
  let searches = [];
  let alerts = [];
  let historyFor = null;
  let pollTimer = 0;
  let disposed = false;

  function renderRows() {
    table.hidden = alerts.length === 0;
    rows.replaceChildren(...alerts.map((alert) => {
      const { state } = alert;
      const checked = state.last_evaluated_ms ? formatShort(state.last_evaluated_ms, true) : 'not yet';
      const button = (label, onClick, extra = {}) => {
        const b = h('button', { type: 'button', 'aria-label': `${label} ${alert.name}`, ...extra }, label);
        b.addEventListener('click', onClick);
        return b;
      };
      const muted = isMuted(alert);
      const [what, when] = ruleSummary(alert);
      return h('tr', { 'data-id': alert.id, class: historyFor === alert.id ? 'selected' : '' },
        h('td', {}, stateBadge(alert)),
        h('td', { class: 'name' }, alert.name),
        h('td', { class: 'search' }, alert.search_name, h('div', { class: 'query' }, alert.query || '(everything)')),
        h('td', { class: 'rule' }, what, h('div', { class: 'hint' }, when)),
        h('td', {}, alert.channels.map(channelSummary).join('; ') || '—'),
        h('td', { class: 'checked' }, checked,
          state.last_fired_ms ? h('div', { class: 'hint fired' }, `fired ${formatShort(state.last_fired_ms, true)}`) : null,
          state.last_error ? h('div', { class: 'error' }, state.last_error) : null),
        h('td', { class: 'row-actions' },
          button('History', () => showHistory(alert)),
          button('Send test', () => sendTest(alert)),
          muted
            ? button('Unmute', () => setMuted(alert, null))
            : button('Mute 1 h', () => setMuted(alert, Date.now() + MUTE_MS)),
          button('Edit', () => openEditor(alert)),
          button('Delete', (event) => remove(alert, event.currentTarget), { class: 'danger' })));
    }));
  }

  function showStatus() {
    status.textContent = alerts.length || editor.childElementCount
      ? ''
      : 'No alerts yet. Create one from a search with “Create alert”.';
  }

  async function load() {
    try {
      [alerts, searches] = await Promise.all([api(ALERTS_PATH).then((a) => a.alerts), listSearches()]);
      if (disposed) return false;
      renderRows();
      showStatus();
      newButton.hidden = false;
      refreshButton.hidden = false;
      return true;
    } catch (e) {
      if (!disposed) status.textContent = `Cannot load alerts: ${e.message}`;
      return false;
    }
  }

  async function refresh() {
    await load();
    const shown = alerts.find((a) => a.id === historyFor);
    if (shown) await showHistory(shown, { quiet: true });
  }

  async function showHistory(alert, { quiet = false } = {}) {
    clearTimeout(pollTimer);
    if (historyFor !== alert.id) {
      historyFor = alert.id;
      renderRows();
    }
    history.hidden = false;
    main.querySelector('#history-title').textContent = `Delivery history: ${alert.name}`;
    if (!quiet) historyList.replaceChildren(h('li', { class: 'hint' }, 'Loading…'));
    try {
      const answer = await api(`${ALERTS_PATH}/${alert.id}/history`);
      if (disposed || historyFor !== alert.id) return;
      historyList.replaceChildren(...(answer.deliveries.length
        ? answer.deliveries.map(deliveryItem)
        : [h('li', { class: 'hint' }, 'Nothing sent yet.')]));
      historyUpdated.textContent = `as of ${formatShort(Date.now(), true)}`;
      if (answer.deliveries.some((d) => d.status === 'pending')) {
        pollTimer = setTimeout(() => showHistory(alert, { quiet: true }), HISTORY_POLL_MS);
      }
    } catch (e) {
      if (!disposed && historyFor === alert.id) {
        historyList.replaceChildren(h('li', { class: 'error' }, `Cannot load history: ${e.message}`));
      }
    }
  }

  async function sendTest(alert) {
    try {
      const answer = await api(`${ALERTS_PATH}/${alert.id}/test`, { method: 'POST' });
      const n = answer.delivery_ids.length;
      toast(`Test queued for ${n} ${n === 1 ? 'channel' : 'channels'} of “${alert.name}”`);
      showHistory(alert);
    } catch (e) {
      toast(`Cannot send a test: ${e.message}`, { bad: true });
    }
  }

  async function setMuted(alert, until) {
    try {
      await api(`${ALERTS_PATH}/${alert.id}`, { method: 'PUT', body: ruleInput(alert, { muted_until_ms: until }) });
      toast(until ? `Muted “${alert.name}” until ${formatShort(until)}` : `Unmuted “${alert.name}”`);
      await load();
    } catch (e) {
      toast(`Cannot ${until ? 'mute' : 'unmute'}: ${e.message}`, { bad: true });
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
      if (historyFor === alert.id) {
        clearTimeout(pollTimer);
        history.hidden = true;
        historyFor = null;
      }
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
    fieldset.querySelector('[data-remove]').addEventListener('click', () => {
      fieldset.remove();
      showError(editor.querySelector('#alert-error'), '');
    });
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
    showStatus();
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
    field('direction').value = a.below !== undefined && a.below !== null ? 'below' : 'above';
    field('limit').value = a.below ?? a.above ?? '';
    field('samples').value = String(a.samples);
    field('enabled').checked = a.enabled;
    const channels = form.querySelector('#alert-channels');
    for (const channel of a.channels) addChannel(channels, channel);
    const syncKind = () => {
      const kind = form.querySelector('input[name="kind"]:checked').value;
      field('threshold').disabled = kind !== 'threshold';
      field('limit').disabled = kind !== 'metric';
      field('direction').disabled = kind !== 'metric';
      field('samples').disabled = kind === 'metric';
      field('window').disabled = kind === 'any';
      // An `any` rule is checked on every index commit; its interval only
      // spaces its notifications.
      field('interval-label').textContent = kind === 'any' ? 'Notify at most every' : 'Check every';
    };
    form.querySelectorAll('input[name="kind"]').forEach((r) => r.addEventListener('change', syncKind));
    syncKind();
    form.querySelector('#add-email').addEventListener('click', () => addChannel(channels, { type: 'email' }));
    form.querySelector('#add-webhook').addEventListener('click', () => addChannel(channels, { type: 'webhook' }));
    form.querySelector('#alert-cancel').addEventListener('click', () => {
      editor.replaceChildren();
      showStatus();
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
        const kind = form.querySelector('input[name="kind"]:checked').value;
        const limitText = field('limit').value.trim();
        const limit = Number(limitText);
        if (kind === 'metric' && (!limitText || !Number.isFinite(limit))) throw new Error('Limit: a number.');
        const direction = field('direction').value;
        if (!Number.isInteger(samples) || samples < 0 || samples > MAX_SAMPLES) {
          throw new Error(`Sample lines: a whole number from 0 to ${MAX_SAMPLES}.`);
        }
        const channelList = readChannels(channels);
        if (!channelList.length) throw new Error('Add at least one channel (email or webhook).');
        if (!select.value) throw new Error('Choose a saved search.');
        body = {
          search_id: null, name, kind,
          interval_secs: Number(field('interval').value), window_secs: Number(field('window').value),
          threshold, samples, enabled: field('enabled').checked,
          above: kind === 'metric' && direction === 'above' ? limit : null,
          below: kind === 'metric' && direction === 'below' ? limit : null,
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
        showError(error, `Cannot save: ${e.message}`);
      }
    });
    field('name').focus();
  }

  newButton.addEventListener('click', () => openEditor(null));
  refreshButton.addEventListener('click', () => refresh());

  (async () => {
    status.textContent = 'Loading…';
    const ok = await load();
    const params = new URLSearchParams(window.location.search);
    if (ok && params.get('new') === '1') {
      openEditor(null, { q: params.get('q') || '', range: params.get('range') || null });
    }
  })();
  return {
    dispose() {
      disposed = true;
      clearTimeout(pollTimer);
    },
  };
}
