// Settings → Configuration: the entries of one organization (its own and the global ones it
// inherits) or of the global scope; add, edit, delete.
//
// Secrets: the server sends "[SECRET]" in place of a secret's value in every list, and this
// page never calls a /reveal route. Editing a secret starts with an empty value field; saving
// with it empty sends PATCH, which changes only the description and keeps the stored secret.

import {api, configsPath} from '/assets/api.js';
import {
  h, clear, row, uid, banner, cell, confirmDialog, emptyState, errorState, formatActor,
  loadingState, openDialog, table, timeElement, toast,
} from '/assets/dom.js';

const TYPES = [
  ['string', 'String'],
  ['int', 'Int'],
  ['bool', 'Bool'],
  ['json', 'JSON'],
  ['secret', 'Secret'],
];
const TYPE_LABELS = Object.fromEntries(TYPES);
const MASK = '••••••••';

// The text of a value, as the editor shows it (never called for a secret).
function valueText(entry, pretty = false) {
  const value = entry.value;
  switch (entry.type) {
    case 'string':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'int':
    case 'bool':
      return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
    case 'json':
      return pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
    default:
      return '';
  }
}

function scopeInfo(entry, orgView) {
  if (!orgView) return {text: 'global', className: 'scope-global'};
  if (entry.scope === 'global') return {text: 'global (inherited)', className: 'scope-inherited'};
  if (entry.overrides_global) return {text: 'org (overrides global)', className: 'scope-override'};
  return {text: 'org', className: 'scope-org'};
}

function renderValue(entry) {
  if (entry.type === 'secret') {
    return h('span', {class: 'secret-mask', title: 'Secret: its value is never sent to the browser'},
      h('span', {'aria-hidden': 'true'}, MASK), h('span', {class: 'visually-hidden'}, 'hidden secret'));
  }
  const text = valueText(entry);
  if (entry.type === 'bool') return h('span', {class: `bool bool-${text}`}, text);
  if (entry.type === 'string' && text === '') return h('span', {class: 'muted'}, '(empty)');
  return h('code', {class: `value value-${entry.type}`, title: text.length > 40 ? text.slice(0, 2000) : null},
    text);
}

export function mountConfigs(container, ctx) {
  const orgView = ctx.scope !== 'global';
  const canWrite = ctx.isAdmin;
  let entries = null;
  let alive = true;
  let focusKeyAfterRender = null;

  const notice = h('div', {class: 'page-notice'});
  const listArea = h('div', {class: 'list-area', 'aria-live': 'off'});
  const count = h('span', {class: 'toolbar-count muted'});
  const filter = h('input', {id: 'config-filter', type: 'search', class: 'input input-search',
    placeholder: 'Filter by key', autocomplete: 'off', spellcheck: 'false',
    oninput: () => renderList()});
  const addButton = canWrite
    ? h('button', {type: 'button', class: 'btn btn-primary', onclick: () => openEditor(null)},
      h('span', {class: 'btn-icon', 'aria-hidden': 'true'}, '+'), 'Add Config')
    : null;

  const subtitle = orgView
    ? ['Settings and secrets of ', h('strong', {}, ctx.scopeName),
      '. Global entries are inherited unless the organization overrides them.']
    : ['Entries of the ', h('strong', {}, 'global scope'),
      ': every organization inherits them unless it overrides them.'];

  container.append(h('section', {class: 'page', 'aria-labelledby': 'page-title'},
    h('div', {class: 'page-header'},
      h('div', {class: 'page-heading'},
        h('p', {class: 'breadcrumb'}, 'Settings'),
        h('h1', {id: 'page-title', class: 'page-title'}, 'Configuration'),
        h('p', {class: 'page-subtitle muted'}, subtitle)),
      addButton),
    notice,
    h('div', {class: 'toolbar'},
      h('div', {class: 'toolbar-field'},
        h('label', {for: 'config-filter', class: 'toolbar-label'}, 'Filter'), filter),
      count),
    listArea));

  async function load() {
    if (entries === null) clear(listArea).append(loadingState('Loading configuration…'));
    listArea.setAttribute('aria-busy', 'true');
    try {
      const answer = await api('GET', configsPath(ctx.scope));
      if (!alive || !ctx.alive()) return;
      entries = (answer || []).slice().sort((a, b) => a.key.localeCompare(b.key));
      renderList();
    } catch (error) {
      if (!alive || !ctx.alive()) return;
      entries = null;
      count.textContent = '';
      clear(listArea).append(errorState(error, () => load()));
    } finally {
      listArea.removeAttribute('aria-busy');
    }
  }

  function renderList() {
    if (entries === null) return;
    const needle = filter.value.trim().toLowerCase();
    const shown = needle ? entries.filter((e) => e.key.toLowerCase().includes(needle)) : entries;
    count.textContent = needle
      ? `${shown.length} of ${entries.length} entries`
      : `${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}`;
    clear(listArea);
    if (entries.length === 0) {
      listArea.append(emptyState('No config yet.',
        canWrite ? 'Add Config creates the first entry: a setting, a flag or a secret.'
          : 'Nothing has been stored here yet.'));
      return;
    }
    if (shown.length === 0) {
      listArea.append(emptyState(`No key matches “${filter.value.trim()}”.`, null,
        h('button', {type: 'button', class: 'btn btn-small', onclick: () => {
          filter.value = '';
          renderList();
          filter.focus();
        }}, 'Clear filter')));
      return;
    }
    const columns = [
      {label: 'Key', className: 'col-key'}, {label: 'Type', className: 'col-type'},
      {label: 'Value', className: 'col-value'}, {label: 'Description', className: 'col-description'},
      {label: 'Scope', className: 'col-scope'}, {label: 'Updated', className: 'col-updated'},
    ];
    if (canWrite) columns.push({label: 'Actions', className: 'col-actions'});
    listArea.append(table({
      caption: `Configuration of ${ctx.scopeName}`,
      columns,
      className: 'config-table',
      rows: shown.map(renderRow),
    }));
    if (focusKeyAfterRender) {
      const target = listArea.querySelector(`button[data-edit="${CSS.escape(focusKeyAfterRender)}"]`);
      focusKeyAfterRender = null;
      if (target) target.focus();
      else if (addButton) addButton.focus();
    }
  }

  function renderRow(entry) {
    const scope = scopeInfo(entry, orgView);
    const inherited = orgView && entry.scope === 'global';
    const tr = row({'data-key': entry.key},
      cell('Key', h('code', {class: 'config-key'}, entry.key), 'col-key'),
      cell('Type', h('span', {class: `type-badge type-${entry.type}`}, TYPE_LABELS[entry.type] || entry.type),
        'col-type'),
      cell('Value', renderValue(entry), 'col-value'),
      cell('Description', entry.description ? entry.description : h('span', {class: 'muted'}, '—'),
        'col-description'),
      cell('Scope', h('span', {class: `scope-badge ${scope.className}`}, scope.text), 'col-scope'),
      cell('Updated', h('div', {class: 'updated'}, timeElement(entry.updated_at),
        h('span', {class: 'muted updated-by', title: entry.updated_by || ''},
          `by ${formatActor(entry.updated_by)}`)), 'col-updated'));
    if (canWrite) {
      tr.append(cell('Actions', h('div', {class: 'row-actions'},
        h('button', {type: 'button', class: 'btn btn-small', 'data-edit': entry.key,
          'aria-label': `Edit ${entry.key}`,
          title: inherited ? `Override the global ${entry.key} for ${ctx.scopeName}` : null,
          onclick: () => openEditor(entry)}, 'Edit'),
        inherited ? null : h('button', {type: 'button', class: 'btn btn-small btn-danger-ghost',
          'aria-label': `Delete ${entry.key}`, onclick: () => remove(entry)}, 'Delete')),
      'col-actions'));
    }
    return tr;
  }

  async function remove(entry) {
    const where = orgView ? ctx.scopeName : 'the global scope';
    let consequence;
    if (!orgView) {
      consequence = 'Organizations that inherit it will no longer see it, unless they have their own value.';
    } else if (entry.overrides_global) {
      consequence = `${ctx.scopeName} inherits the global value again.`;
    } else {
      consequence = 'Programs that read it will no longer find it.';
    }
    const confirmed = await confirmDialog({
      title: `Delete ${entry.key}?`,
      message: `Delete ${entry.key}? This removes it from ${where}. ${consequence} This cannot be undone.`,
      confirmLabel: 'Delete',
    });
    if (!confirmed || !alive) return;
    clear(notice);
    try {
      await api('DELETE', configsPath(ctx.scope, entry.key),
        {query: {expected_version: entry.version}});
      toast(`Deleted ${entry.key}`);
    } catch (error) {
      if (error.status === 401) return;
      notice.append(banner('error', h('strong', {}, `Could not delete ${entry.key}. `), error.message));
    }
    if (addButton) addButton.focus();
    await load();
  }

  // The add / edit / override dialog.
  function openEditor(entry) {
    const mode = entry === null ? 'create'
      : (orgView && entry.scope === 'global') ? 'override' : 'edit';
    const storedSecret = mode === 'edit' && entry.type === 'secret';
    const ids = {
      key: uid('cfg-key'), type: uid('cfg-type'), value: uid('cfg-value'),
      description: uid('cfg-description'),
    };
    const errors = {};
    const hints = {};
    for (const field of Object.keys(ids)) {
      errors[field] = h('p', {id: `${ids[field]}-error`, class: 'field-error', hidden: true});
      hints[field] = h('p', {id: `${ids[field]}-hint`, class: 'field-hint'});
    }
    const formError = h('div', {class: 'form-error', role: 'alert'});

    const keyInput = h('input', {id: ids.key, name: 'key', type: 'text', class: 'input mono',
      autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', maxlength: '255',
      value: entry ? entry.key : '', readOnly: mode !== 'create', required: mode === 'create',
      'aria-describedby': `${ids.key}-hint ${ids.key}-error`});
    hints.key.textContent = mode === 'create'
      ? 'Letters, digits and underscores, e.g. api_key.'
      : (mode === 'override' ? 'Inherited from the global scope: the key cannot change.'
        : 'The key of an entry cannot change.');

    const typeSelect = h('select', {id: ids.type, name: 'type', class: 'select',
      'aria-describedby': `${ids.type}-error`},
    TYPES.map(([value, label]) => h('option', {value}, label)));
    typeSelect.value = entry ? entry.type : 'string';

    const description = h('input', {id: ids.description, name: 'description', type: 'text',
      class: 'input', autocomplete: 'off', maxlength: '1024',
      value: entry && entry.description ? entry.description : '',
      'aria-describedby': `${ids.description}-error`});

    const valueSlot = h('div', {class: 'value-slot'});
    let valueControl = null;

    const initialText = entry && entry.type !== 'secret' ? valueText(entry, true) : '';

    function makeValueControl(type, text) {
      const common = {id: ids.value, name: 'value',
        'aria-describedby': `${ids.value}-hint ${ids.value}-error`};
      switch (type) {
        case 'bool': {
          const select = h('select', {...common, class: 'select'},
            h('option', {value: 'true'}, 'true'), h('option', {value: 'false'}, 'false'));
          select.value = text === 'false' ? 'false' : 'true';
          return select;
        }
        case 'json':
          return h('textarea', {...common, class: 'input mono textarea', rows: '6',
            spellcheck: 'false', value: text, placeholder: '{"retries": 3, "regions": ["eu", "us"]}'});
        case 'secret':
          return h('input', {...common, type: 'password', class: 'input mono',
            autocomplete: 'new-password', spellcheck: 'false', value: text,
            placeholder: storedSecret ? '••••••••  (unchanged)' : ''});
        case 'int':
          return h('input', {...common, type: 'text', inputmode: 'numeric', class: 'input mono',
            autocomplete: 'off', value: text, placeholder: 'e.g. 30'});
        default:
          return h('input', {...common, type: 'text', class: 'input', autocomplete: 'off',
            spellcheck: 'false', value: text});
      }
    }

    function valueHint(type) {
      switch (type) {
        case 'secret':
          if (storedSecret) return 'Leave empty to keep the stored secret.';
          return 'Stored encrypted. Nobody can read it back in the web UI.';
        case 'int':
          return 'A whole number (64-bit).';
        case 'json':
          return 'Any JSON value: an object, an array, a string, a number…';
        case 'bool':
          return '';
        default:
          return '';
      }
    }

    function setValueControl(type) {
      let text = initialText;
      if (valueControl) {
        // Carry what was typed over to the new control, except out of a password field.
        text = valueControl.type === 'password' ? '' : valueControl.value;
      } else if (type === 'secret') {
        text = '';
      }
      valueControl = makeValueControl(type, text);
      // An error goes away as soon as the field is changed (not on blur: moving the layout
      // under a pointer that is about to press Save would make the click miss).
      valueControl.addEventListener('input', () => clearError('value'));
      valueSlot.replaceChildren(valueControl);
      hints.value.textContent = valueHint(type);
      hints.value.hidden = !hints.value.textContent;
      clearError('value');
    }

    function showError(field, message) {
      const target = errors[field] ? field : 'value';
      errors[target].textContent = message;
      errors[target].hidden = false;
      const control = target === 'value' ? valueControl
        : {key: keyInput, type: typeSelect, description}[target];
      control.setAttribute('aria-invalid', 'true');
      control.closest('.field').classList.add('has-error');
      control.focus();
    }

    function clearError(field) {
      errors[field].textContent = '';
      errors[field].hidden = true;
      const control = field === 'value' ? valueControl
        : {key: keyInput, type: typeSelect, description}[field];
      if (control) {
        control.removeAttribute('aria-invalid');
        const wrapper = control.closest('.field');
        if (wrapper) wrapper.classList.remove('has-error');
      }
    }

    function clearErrors() {
      for (const field of Object.keys(errors)) clearError(field);
      formError.replaceChildren();
    }

    // JSON.parse as the check: an invalid document is never sent.
    function checkJson() {
      const text = valueControl.value;
      if (text.trim() === '') {
        showError('value', 'Enter a JSON value, e.g. {} or [] or "text".');
        return false;
      }
      try {
        JSON.parse(text);
        return true;
      } catch (error) {
        showError('value', `Invalid JSON: ${error.message}`);
        return false;
      }
    }

    const field = (name, label, control, ...extra) => h('div', {class: 'field'},
      h('label', {for: ids[name], class: 'label'}, label), control, ...extra,
      name === 'value' ? null : hints[name], errors[name]);

    const saveButton = h('button', {type: 'submit', class: 'btn btn-primary'}, 'Save');
    const cancelButton = h('button', {type: 'button', class: 'btn',
      onclick: () => dialog.close()}, 'Cancel');

    let title = 'Add config';
    let intro = null;
    if (mode === 'edit') title = `Edit ${entry.key}`;
    if (mode === 'override') {
      title = `Override ${entry.key}`;
      intro = h('p', {class: 'modal-intro muted'},
        `${entry.key} is inherited from the global scope. Saving stores a value for `,
        h('strong', {}, ctx.scopeName), ' that overrides it; the global entry does not change.');
    } else if (mode === 'create') {
      intro = h('p', {class: 'modal-intro muted'}, 'In ', h('strong', {},
        orgView ? ctx.scopeName : 'the global scope'), '.');
    }

    let saving = false;
    const form = h('form', {class: 'modal-form', novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      if (saving) return;
      clearErrors();
      const key = mode === 'create' ? keyInput.value.trim() : entry.key;
      if (!key) {
        showError('key', 'Enter a key.');
        return;
      }
      const type = typeSelect.value;
      const text = valueControl.value;
      const expected = mode === 'edit' ? entry.version : 0;
      let method = 'PUT';
      let body;
      if (storedSecret && type === 'secret' && text === '') {
        method = 'PATCH';
        body = JSON.stringify({description: description.value, expected_version: entry.version});
      } else {
        let literal;
        switch (type) {
          case 'secret':
            if (text === '') {
              showError('value', mode === 'override'
                ? `Enter the secret value for ${ctx.scopeName}.` : 'Enter the secret value.');
              return;
            }
            literal = JSON.stringify(text);
            break;
          case 'string':
            literal = JSON.stringify(text);
            break;
          case 'int': {
            const digits = text.trim();
            // A JSON number when it is one exactly; otherwise the text, which the server checks.
            literal = /^-?(0|[1-9][0-9]*)$/.test(digits) && Number.isSafeInteger(Number(digits))
              ? digits : JSON.stringify(digits);
            break;
          }
          case 'bool':
            literal = text === 'false' ? 'false' : 'true';
            break;
          case 'json':
            if (!checkJson()) return;
            // The document exactly as typed: the server stores these bytes.
            literal = text.trim();
            break;
          default:
            showError('type', 'Choose a type.');
            return;
        }
        if (storedSecret && type !== 'secret' && text === '') {
          showError('value', 'Enter a value: the stored secret is not carried over to another type.');
          return;
        }
        body = `{"type":${JSON.stringify(type)},"value":${literal},` +
          `"description":${JSON.stringify(description.value)},"expected_version":${expected}}`;
      }
      saving = true;
      saveButton.disabled = true;
      saveButton.textContent = 'Saving…';
      try {
        await api(method, configsPath(ctx.scope, key), {rawBody: body});
        body = null;
        focusKeyAfterRender = key;
        dialog.close();
        toast(mode === 'create' ? `Added ${key}` : `Saved ${key}`);
        await load();
      } catch (error) {
        body = null;
        if (error.status === 401) return;
        let target = error.field;
        if (!target && error.code === 'already_exists') target = 'key';
        if (!target && (error.code === 'invalid_argument' || error.code === 'bad_request' ||
            error.code === 'payload_too_large')) target = 'value';
        if (target) {
          showError(target, error.message);
        } else if (error.code === 'conflict') {
          formError.replaceChildren(h('div', {class: 'banner banner-error'}, error.message,
            '. Someone changed it meanwhile: cancel, and edit the current version.'));
        } else {
          formError.replaceChildren(h('div', {class: 'banner banner-error'}, error.message));
        }
      } finally {
        saving = false;
        saveButton.disabled = false;
        saveButton.textContent = 'Save';
      }
    }},
    intro,
    formError,
    field('key', 'Key', keyInput),
    field('type', 'Type', typeSelect),
    h('div', {class: 'field'},
      h('label', {for: ids.value, class: 'label'}, 'Value'), valueSlot, hints.value, errors.value),
    field('description', 'Description', description),
    h('div', {class: 'modal-actions'}, cancelButton, saveButton));

    typeSelect.addEventListener('change', () => {
      clearError('type');
      setValueControl(typeSelect.value);
    });
    keyInput.addEventListener('input', () => clearError('key'));
    description.addEventListener('input', () => clearError('description'));
    setValueControl(typeSelect.value);
    hints.description.textContent = 'Optional: what it is for, who owns it.';

    const dialog = openDialog({title, className: 'modal-config', body: form});
    if (mode === 'create') keyInput.focus();
    else valueControl.focus();
  }

  load();
  return () => {
    alive = false;
  };
}
