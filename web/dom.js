// Small DOM helpers shared by the pages. Everything is built with createElement and
// textContent: no innerHTML, so no value shown on a page can become markup, and nothing
// needs 'unsafe-inline' (the Content-Security-Policy allows none).

const PROPERTIES = new Set([
  'value', 'checked', 'disabled', 'hidden', 'readOnly', 'required', 'selected', 'multiple',
  'tabIndex', 'open',
]);

// h('button', {class: 'btn', onclick: fn, 'aria-label': 'Edit x'}, 'Edit')
// Attributes: `class`, `text` (textContent), `on<event>` (listener), DOM properties listed
// above, anything else as an attribute (null/undefined/false: left out).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') {
      el.className = value;
    } else if (name === 'text') {
      el.textContent = value;
    } else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (PROPERTIES.has(name)) {
      el[name] = value;
    } else if (name === 'style') {
      throw new Error('inline styles are not allowed by the CSP: use a class');
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let idCounter = 0;
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// Times: the local date and time (the year only when it is not this one), the exact UTC
// instant in the title.
const formats = new Map();
function formatter(seconds, withYear) {
  const name = `${seconds}${withYear}`;
  if (!formats.has(name)) {
    formats.set(name, new Intl.DateTimeFormat(undefined, {
      year: withYear ? 'numeric' : undefined, month: 'short', day: 'numeric',
      hour: 'numeric', minute: '2-digit', second: seconds ? '2-digit' : undefined,
    }));
  }
  return formats.get(name);
}

export function formatTime(iso, {seconds = false} = {}) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return formatter(seconds, date.getFullYear() !== new Date().getFullYear()).format(date);
}

// Time of day above, date below: a narrow column for logs.
const timeOnly = new Intl.DateTimeFormat(undefined, {hour: 'numeric', minute: '2-digit', second: '2-digit'});
export function timeStack(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return h('span', {class: 'muted'}, iso || '—');
  const withYear = date.getFullYear() !== new Date().getFullYear();
  const day = new Intl.DateTimeFormat(undefined, {year: withYear ? 'numeric' : undefined,
    month: 'short', day: 'numeric'}).format(date);
  return h('time', {datetime: iso, title: iso, class: 'time-stack'},
    h('span', {}, timeOnly.format(date)), h('span', {class: 'muted'}, day));
}

export function timeElement(iso, options) {
  if (!iso) return h('span', {class: 'muted'}, '—');
  return h('time', {datetime: iso, title: iso}, formatTime(iso, options));
}

// "token:ci/2b1e..." → "ci", "user:ana@acme.example/5c..." → "ana@acme.example" (the full
// text goes in a title).
export function formatActor(actor) {
  if (!actor) return '—';
  const match = /^(token|user):(.*)\/[0-9a-fA-F-]{8,}$/.exec(actor);
  return match ? match[2] : actor;
}

// A polite announcement at the bottom of the page (the #toasts live region).
export function toast(message, kind = 'success') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', {class: `toast toast-${kind}`}, message);
  region.append(item);
  setTimeout(() => item.remove(), 5000);
}

// A banner: kind is 'error', 'warning', 'success' or 'info'. Errors are alerts.
export function banner(kind, ...children) {
  return h('div', {class: `banner banner-${kind}`, role: kind === 'error' ? 'alert' : 'status'},
    ...children);
}

// A native modal <dialog>: focus is moved into it and kept there, Escape closes it, and
// focus goes back to the element that opened it. The dialog is removed from the document
// when it closes, so nothing typed into it (a secret) stays in the page.
export function openDialog({title, className = '', body, onClose, labelId}) {
  const titleId = labelId || uid('dialog-title');
  const dialog = h('dialog', {class: `modal ${className}`, 'aria-labelledby': titleId});
  const opener = document.activeElement;
  dialog.append(h('h2', {id: titleId, class: 'modal-title'}, title), ...[].concat(body));
  dialog.addEventListener('close', () => {
    for (const input of dialog.querySelectorAll('input, textarea')) input.value = '';
    dialog.remove();
    if (onClose) onClose(dialog.returnValue);
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// A confirmation dialog. Resolves true when the confirming button was pressed.
export function confirmDialog({title, message, confirmLabel, danger = true}) {
  return new Promise((resolve) => {
    let confirmed = false;
    const cancel = h('button', {type: 'button', class: 'btn', onclick: () => dialog.close()},
      'Cancel');
    const confirm = h('button', {
      type: 'button',
      class: danger ? 'btn btn-danger' : 'btn btn-primary',
      onclick: () => {
        confirmed = true;
        dialog.close();
      },
    }, confirmLabel);
    const dialog = openDialog({
      title,
      className: 'modal-confirm',
      body: [
        h('p', {class: 'confirm-message'}, message),
        h('div', {class: 'modal-actions'}, cancel, confirm),
      ],
      onClose: () => resolve(confirmed),
    });
    cancel.focus();
  });
}

// Empty, loading and error states of a list.
export function emptyState(title, text, ...actions) {
  return h('div', {class: 'empty-state'},
    h('p', {class: 'empty-title'}, title),
    text ? h('p', {class: 'muted'}, text) : null,
    actions.length ? h('div', {class: 'empty-actions'}, ...actions) : null);
}

export function loadingState(text) {
  return h('div', {class: 'loading-state', role: 'status', 'aria-live': 'polite'},
    h('span', {class: 'spinner', 'aria-hidden': 'true'}), text);
}

export function errorState(error, retry) {
  return banner('error',
    h('strong', {}, 'Could not load this page. '),
    error && error.message ? error.message : String(error),
    retry ? h('button', {type: 'button', class: 'btn btn-small banner-action', onclick: retry},
      'Retry') : null);
}

// A table whose cells carry their column name (data-label), shown as cards on a phone.
// The explicit roles keep it a table for assistive technology when CSS changes the display
// of its parts (browsers drop table semantics for display: block).
export function table({caption, columns, rows, className = ''}) {
  const head = h('thead', {role: 'rowgroup'}, h('tr', {role: 'row'}, columns.map((c) =>
    h('th', {scope: 'col', role: 'columnheader', class: c.className || null}, c.label))));
  const body = h('tbody', {role: 'rowgroup'}, rows);
  return h('div', {class: 'table-wrap'},
    h('table', {class: `data-table ${className}`, role: 'table'},
      caption ? h('caption', {class: 'visually-hidden'}, caption) : null, head, body));
}

export function row(attrs, ...cells) {
  return h('tr', {role: 'row', ...attrs}, ...cells);
}

export function cell(label, content, className) {
  return h('td', {'data-label': label, role: 'cell', class: className || null}, content);
}
