// The server's HTTP API as the UI uses it. Requests ride on the session
// cookie; every request carries the CSRF header the server requires of
// cookie requests that change state.

export class ApiError extends Error {
  constructor(status, body) {
    super(body && typeof body.error === 'string' ? body.error : `HTTP ${status}`);
    this.status = status;
    this.position = body && Number.isInteger(body.position) ? body.position : null;
  }
}

// Fired on `window` when the server says the session is gone.
export const SIGNED_OUT_EVENT = 'loghound:signed-out';

// Calls `path` (with `params` as the query string) and returns the JSON
// answer, `null` for 204. Throws ApiError for error answers.
export async function api(path, { method = 'GET', params, body, signal } = {}) {
  const url = new URL(path, window.location.origin);
  if (params) {
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
    }
  }
  const headers = { 'X-Loghound-CSRF': '1', Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    signal,
  });
  if (response.status === 204) return null;
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (!response.ok) {
    if (response.status === 401 && path !== '/api/v1/session') {
      window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT));
    }
    throw new ApiError(response.status, json);
  }
  return json;
}
