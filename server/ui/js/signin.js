// The sign-in page: a token in, a session cookie out (the server sets it
// HttpOnly, so this script never sees it).

import { api, ApiError } from './api.js';
import { fromTemplate, showError } from './dom.js';

export function renderSignIn(main, { onSignedIn }) {
  main.replaceChildren(fromTemplate('tpl-signin'));
  const form = main.querySelector('#signin-form');
  const input = main.querySelector('#signin-token');
  const error = main.querySelector('#signin-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      showError(error, 'Paste an API token.');
      input.focus();
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const session = await api('/api/v1/session', { method: 'POST', body: { token } });
      input.value = '';
      onSignedIn(session);
    } catch (e) {
      const message = e instanceof ApiError && e.status === 401
        ? 'This token is unknown or revoked.'
        : e.message;
      showError(error, message);
      input.setAttribute('aria-invalid', 'true');
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  input.focus();
  return { dispose() {} };
}
