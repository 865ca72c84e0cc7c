// The search state that lives in the URL: query and time range.
// `/?q=timeout&range=1h` (a preset, relative to now when the link is
// opened) or `/?q=timeout&from=2026-11-25T03:00:00.000Z&to=…` (custom).

export const PRESETS = {
  '15m': { label: 'Last 15 minutes', ms: 15 * 60 * 1000 },
  '1h': { label: 'Last 1 hour', ms: 60 * 60 * 1000 },
  '24h': { label: 'Last 24 hours', ms: 24 * 60 * 60 * 1000 },
  '7d': { label: 'Last 7 days', ms: 7 * 24 * 60 * 60 * 1000 },
};
export const DEFAULT_RANGE = '1h';

// {q, range, fromMs, toMs}: `range` is a preset name or 'custom'.
export function stateFromUrl(search = window.location.search) {
  const params = new URLSearchParams(search);
  const q = params.get('q') || '';
  const from = Date.parse(params.get('from') || '');
  const to = Date.parse(params.get('to') || '');
  if (!Number.isNaN(from) && !Number.isNaN(to) && from < to) {
    return { q, range: 'custom', fromMs: from, toMs: to };
  }
  const range = params.get('range');
  return { q, range: range in PRESETS ? range : DEFAULT_RANGE, fromMs: null, toMs: null };
}

export function urlForState(state, path = '/') {
  const params = new URLSearchParams();
  if (state.q) params.set('q', state.q);
  if (state.range === 'custom') {
    params.set('from', new Date(state.fromMs).toISOString());
    params.set('to', new Date(state.toMs).toISOString());
  } else {
    params.set('range', state.range);
  }
  return `${path}?${params}`;
}

// Absolute bounds for one search, so the search, its later pages and the
// histogram all cover exactly the same span.
export function resolveBounds(state, now = Date.now()) {
  if (state.range === 'custom') return { fromMs: state.fromMs, toMs: state.toMs };
  return { fromMs: now - PRESETS[state.range].ms, toMs: now };
}

// `datetime-local` inputs work in local time without a zone.
export function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

export function fromLocalInput(value) {
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : ms;
}
