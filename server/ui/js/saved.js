// Saved searches: the save dialog of the search page and the list page
// (open, rename, delete). `/api/v1/searches`; reads need `read`, writes
// `admin`: without it the list offers only "Open".

import { api } from './api.js';
import { fromTemplate, h, showError, toast } from './dom.js';
import { PRESETS, urlForState } from './range.js';
import { formatShort } from './text.js';

export const SEARCHES_PATH = '/api/v1/searches';

export async function listSearches() {
  const answer = await api(SEARCHES_PATH);
  return answer.searches;
}

// Saves `{q, range}` under a name the user types; resolves to the saved
// search, or null when cancelled.
export function openSaveDialog(state) {
  let dialog = document.getElementById('save-dialog');
  if (!dialog) {
    document.body.append(fromTemplate('tpl-save'));
    dialog = document.getElementById('save-dialog');
  }
  const form = dialog.querySelector('form');
  const name = dialog.querySelector('#save-name');
  const error = dialog.querySelector('#save-error');
  const range = state.range in PRESETS ? state.range : null;
  dialog.querySelector('#save-query').textContent = state.q || '(everything)';
  dialog.querySelector('#save-range').textContent = range ? PRESETS[range].label.toLowerCase() : 'none (custom ranges are not saved)';
  name.value = state.q.slice(0, 80);
  showError(error, '');
  return new Promise((resolve) => {
    let result = null;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    // Escape closes the dialog too; either way, detach and answer once.
    dialog.addEventListener('close', () => {
      form.removeEventListener('submit', submit);
      cancel.removeEventListener('click', onCancel);
      resolve(result);
    }, { once: true });
    const submit = async (event) => {
      event.preventDefault();
      if (!name.value.trim()) {
        showError(error, 'Give the search a name.');
        name.focus();
        return;
      }
      try {
        const saved = await api(SEARCHES_PATH, { method: 'POST', body: { name: name.value.trim(), query: state.q, range } });
        toast(`Saved “${saved.name}”`);
        close(saved);
      } catch (e) {
        showError(error, `Cannot save: ${e.message}`);
        name.focus();
      }
    };
    const cancel = dialog.querySelector('[data-close]');
    const onCancel = () => close(null);
    form.addEventListener('submit', submit);
    cancel.addEventListener('click', onCancel);
    dialog.showModal();
    name.select();
  });
}

export function renderSavedPage(main, { navigate, session }) {
  main.replaceChildren(fromTemplate('tpl-saved'));
  const status = main.querySelector('#saved-status');
  const table = main.querySelector('#saved-table');
  const rows = main.querySelector('#saved-rows');
  const canWrite = session.scopes.includes('admin');

  function row(search) {
    const nameCell = h('td', { class: 'name' }, search.name);
    const openLink = h('a', { href: urlForState({ q: search.query, range: search.range || '1h' }) }, 'Open');
    openLink.addEventListener('click', (event) => {
      event.preventDefault();
      navigate(openLink.getAttribute('href'));
    });
    const renameButton = h('button', { type: 'button', disabled: !canWrite, 'aria-label': `Rename ${search.name}` }, 'Rename');
    const deleteButton = h('button', { type: 'button', class: 'danger', disabled: !canWrite, 'aria-label': `Delete ${search.name}` }, 'Delete');
    const tr = h('tr', { 'data-id': search.id },
      nameCell,
      h('td', { class: 'query' }, search.query || '(everything)'),
      h('td', {}, search.range && PRESETS[search.range] ? PRESETS[search.range].label : '—'),
      h('td', {}, h('time', { datetime: new Date(search.created_at_ms).toISOString() }, formatShort(search.created_at_ms, true))),
      h('td', { class: 'row-actions' }, openLink, renameButton, deleteButton));

    renameButton.addEventListener('click', () => {
      const field = h('input', { value: search.name, 'aria-label': 'New name', maxlength: 200 });
      const save = h('button', { type: 'button', class: 'primary' }, 'Save');
      const cancel = h('button', { type: 'button' }, 'Cancel');
      const form = h('form', { class: 'inline-rename' }, field, ' ', save, ' ', cancel);
      nameCell.replaceChildren(form);
      field.focus();
      field.select();
      const commit = async (event) => {
        event.preventDefault();
        const name = field.value.trim();
        if (!name) return;
        try {
          const updated = await api(`${SEARCHES_PATH}/${search.id}`, {
            method: 'PUT', body: { name, query: search.query, range: search.range ?? null },
          });
          Object.assign(search, updated);
          nameCell.replaceChildren(search.name);
          renameButton.setAttribute('aria-label', `Rename ${search.name}`);
          deleteButton.setAttribute('aria-label', `Delete ${search.name}`);
          toast(`Renamed to “${search.name}”`);
        } catch (e) {
          toast(`Cannot rename: ${e.message}`, { bad: true });
        }
      };
      form.addEventListener('submit', commit);
      save.addEventListener('click', commit);
      cancel.addEventListener('click', () => nameCell.replaceChildren(search.name));
      field.addEventListener('keydown', (event) => {
        if (event.key === 'Escape') nameCell.replaceChildren(search.name);
      });
    });

    // Two clicks to delete: the first asks, the second does it.
    deleteButton.addEventListener('click', async () => {
      if (deleteButton.dataset.confirm !== '1') {
        deleteButton.dataset.confirm = '1';
        deleteButton.textContent = 'Confirm delete';
        return;
      }
      try {
        await api(`${SEARCHES_PATH}/${search.id}`, { method: 'DELETE' });
        tr.remove();
        toast(`Deleted “${search.name}”`);
        if (!rows.childElementCount) { table.hidden = true; status.textContent = 'No saved searches yet.'; }
      } catch (e) {
        toast(`Cannot delete: ${e.message}`, { bad: true });
      }
    });
    return tr;
  }

  (async () => {
    status.textContent = 'Loading…';
    try {
      const searches = await listSearches();
      rows.replaceChildren(...searches.map(row));
      table.hidden = searches.length === 0;
      status.textContent = searches.length
        ? (canWrite ? '' : 'Your token has no admin scope: you can open these searches but not change them.')
        : 'No saved searches yet. Use “Save search” on the search page.';
    } catch (e) {
      status.textContent = `Cannot load saved searches: ${e.message}`;
    }
  })();
  return { dispose() {} };
}
