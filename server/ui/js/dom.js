// Small DOM helpers. Text always goes in as text nodes, never as HTML.

// Creates an element: h('button', {class: 'chip', onclick: f}, 'text', child).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.className = value;
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// A copy of a <template>'s content.
export function fromTemplate(id) {
  const template = document.getElementById(id);
  return template.content.cloneNode(true);
}

// Shows a short message in the corner for a few seconds.
let toastTimer = 0;
export function toast(message, { bad = false } = {}) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.classList.toggle('bad', bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, bad ? 8000 : 4000);
}

// Shows or hides an error paragraph.
export function showError(el, message) {
  el.textContent = message || '';
  el.hidden = !message;
}

// Whether a key event happened while the user was typing somewhere.
export function isTyping(event) {
  const t = event.target;
  return t instanceof HTMLElement &&
    (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
}
