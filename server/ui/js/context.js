// The context dialog: the lines before and after an event in its file.

import { api } from './api.js';
import { fromTemplate, h } from './dom.js';
import { hitRow, wireResults } from './results.js';

export const CONTEXT_LINES = 15;

let dialog = null;

function ensureDialog(onFilter) {
  if (dialog && document.body.contains(dialog)) return dialog;
  document.body.append(fromTemplate('tpl-context'));
  dialog = document.getElementById('context-dialog');
  dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
  dialog.addEventListener('click', (event) => {
    if (event.target === dialog) dialog.close(); // the backdrop
  });
  wireResults(dialog.querySelector('#context-lines'), {
    onFilter: (field, value) => { dialog.close(); onFilter(field, value); },
    onOpen: null,
  });
  return dialog;
}

// Opens the dialog for event `id`; `onFilter` is the search page's.
export async function openContext(id, onFilter) {
  const d = ensureDialog(onFilter);
  const list = d.querySelector('#context-lines');
  const where = d.querySelector('#context-where');
  list.replaceChildren(h('li', { class: 'more' }, 'Loading…'));
  list.setAttribute('aria-busy', 'true');
  where.textContent = '';
  if (!d.open) d.showModal();
  try {
    const answer = await api('/api/v1/context', { params: { id, before: CONTEXT_LINES, after: CONTEXT_LINES } });
    const fragment = document.createDocumentFragment();
    for (const hit of answer.before) fragment.append(hitRow(hit, { withOpen: false }));
    const focus = hitRow(answer.event, { withOpen: false, focus: true });
    focus.setAttribute('aria-current', 'true');
    fragment.append(focus);
    for (const hit of answer.after) fragment.append(hitRow(hit, { withOpen: false }));
    list.replaceChildren(fragment);
    where.textContent = `${answer.event.host} ${answer.event.source} — ` +
      `${answer.before.length} before, ${answer.after.length} after`;
    focus.scrollIntoView({ block: 'center' });
  } catch (error) {
    list.replaceChildren(h('li', { class: 'error', role: 'alert' }, `Cannot load context: ${error.message}`));
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}
