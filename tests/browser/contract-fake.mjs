// An in-memory stand-in for the saved-searches and alerts API, answering
// in the browser (Playwright request routing) exactly as the API contract
// says, for servers that do not have the API (they answer 404). Every
// request body is checked against the contract, so a UI that sends the
// wrong shape fails here as it would against the real server.

const KINDS = ['any', 'threshold', 'absence'];
const FORMATS = ['loghound', 'slack', 'papertrail'];
const RANGES = ['15m', '1h', '24h', '7d'];

function problems(body, spec) {
  const out = [];
  for (const [key, check] of Object.entries(spec)) {
    if (!check(body[key])) out.push(key);
  }
  for (const key of Object.keys(body)) if (!(key in spec)) out.push(`unknown field ${key}`);
  return out;
}

const isString = (v) => typeof v === 'string';
const isInt = (v) => Number.isInteger(v);
const searchSpec = {
  name: (v) => isString(v) && v.trim().length > 0,
  query: isString,
  range: (v) => v === undefined || v === null || RANGES.includes(v),
};
const channelOk = (c) => c && (
  (c.type === 'email' && Array.isArray(c.to) && c.to.length > 0 && c.to.every((a) => isString(a) && a.includes('@'))
    && Object.keys(c).every((k) => ['type', 'to'].includes(k))) ||
  (c.type === 'webhook' && isString(c.url) && /^https?:\/\//.test(c.url) && FORMATS.includes(c.format)
    && (c.secret === undefined || isString(c.secret))
    && Object.keys(c).every((k) => ['type', 'url', 'format', 'secret'].includes(k))));
const alertSpec = {
  search_id: isInt,
  name: (v) => isString(v) && v.trim().length > 0,
  kind: (v) => KINDS.includes(v),
  interval_secs: (v) => isInt(v) && v >= 10,
  window_secs: (v) => isInt(v) && v > 0,
  threshold: (v) => isInt(v) && v >= 1,
  samples: (v) => isInt(v) && v >= 0,
  enabled: (v) => typeof v === 'boolean',
  muted_until_ms: (v) => v === null || isInt(v),
  channels: (v) => Array.isArray(v) && v.every(channelOk),
};

export async function installContractFake(context, { searches: fakeSearches, alerts: fakeAlerts }) {
  const state = { searches: [], alerts: [], deliveries: new Map(), nextId: 1, seen: [] };
  const json = (route, status, body) => route.fulfill({
    status, contentType: 'application/json', body: body === undefined ? '' : JSON.stringify(body),
  });
  const bad = (route, what) => json(route, 400, { error: `contract fake: bad body: ${what.join(', ')}` });

  const handle = async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    const method = request.method();
    const parts = url.pathname.split('/').filter(Boolean).slice(2); // after api/v1
    const [collection, idText, action] = parts;
    state.seen.push(`${method} ${url.pathname}`);
    if (method !== 'GET' && request.headers()['x-loghound-csrf'] !== '1') {
      return json(route, 403, { error: 'contract fake: missing X-Loghound-CSRF' });
    }
    let body = null;
    if (['POST', 'PUT'].includes(method) && !(collection === 'alerts' && action === 'test')) {
      try { body = JSON.parse(request.postData() || ''); } catch { return bad(route, ['not JSON']); }
    }
    const id = idText === undefined ? null : Number(idText);
    if (collection === 'searches') {
      if (id === null && method === 'GET') return json(route, 200, { searches: state.searches });
      if (id === null && method === 'POST') {
        const p = problems(body, searchSpec);
        if (p.length) return bad(route, p);
        const search = { id: state.nextId++, name: body.name, query: body.query, range: body.range ?? null, created_at_ms: Date.now() };
        state.searches.push(search);
        return json(route, 201, search);
      }
      const search = state.searches.find((s) => s.id === id);
      if (!search) return json(route, 404, { error: `no saved search ${idText}` });
      if (method === 'GET') return json(route, 200, search);
      if (method === 'PUT') {
        const p = problems(body, searchSpec);
        if (p.length) return bad(route, p);
        Object.assign(search, { name: body.name, query: body.query, range: body.range ?? null });
        return json(route, 200, search);
      }
      if (method === 'DELETE') {
        state.searches = state.searches.filter((s) => s !== search);
        return json(route, 204);
      }
    }
    if (collection === 'alerts') {
      if (id === null && method === 'GET') return json(route, 200, { alerts: state.alerts });
      if (id === null && method === 'POST') {
        const p = problems(body, alertSpec);
        if (p.length) return bad(route, p);
        if (fakeSearches && !state.searches.some((s) => s.id === body.search_id)) return json(route, 400, { error: 'search_id: no such saved search' });
        const alert = { id: state.nextId++, ...body, state: { status: 'ok', last_evaluated_ms: Date.now(), last_fired_ms: null, last_error: null } };
        state.alerts.push(alert);
        return json(route, 201, alert);
      }
      const alert = state.alerts.find((a) => a.id === id);
      if (!alert) return json(route, 404, { error: `no alert ${idText}` });
      if (action === 'history' && method === 'GET') {
        return json(route, 200, { deliveries: state.deliveries.get(alert.id) || [] });
      }
      if (action === 'test' && method === 'POST') {
        const list = state.deliveries.get(alert.id) || [];
        const deliveryId = `d${state.nextId++}`;
        for (const channel of alert.channels) {
          list.unshift({
            delivery_id: deliveryId, channel: channel.type === 'email' ? `email ${channel.to.join(', ')}` : `webhook ${channel.url}`,
            event: 'test', count: 0, status: 'delivered', created_at_ms: Date.now(),
            attempts: [{ at_ms: Date.now(), status_code: channel.type === 'webhook' ? 200 : null, error: null }],
          });
        }
        state.deliveries.set(alert.id, list);
        return json(route, 202, { delivery_id: deliveryId });
      }
      if (action === undefined && method === 'GET') return json(route, 200, alert);
      if (action === undefined && method === 'PUT') {
        const p = problems(body, alertSpec);
        if (p.length) return bad(route, p);
        Object.assign(alert, body);
        return json(route, 200, alert);
      }
      if (action === undefined && method === 'DELETE') {
        state.alerts = state.alerts.filter((a) => a !== alert);
        return json(route, 204);
      }
    }
    return json(route, 404, { error: 'no such route' });
  };
  if (fakeSearches) await context.route(/\/api\/v1\/searches(\/|\?|$)/, handle);
  if (fakeAlerts) await context.route(/\/api\/v1\/alerts(\/|\?|$)/, handle);
  return state;
}
