// Settings → API Tokens (admins): list, create (the token is shown once), revoke.
// The new token lives only in this page's memory and in the box that shows it: dismissing
// the box or leaving the page drops both.

import {api} from '/assets/api.js';
import {
  h, clear, row, banner, cell, confirmDialog, emptyState, errorState, formatActor, loadingState,
  openDialog, table, timeElement, toast, uid,
} from '/assets/dom.js';

const TTL_CHOICES = [
  ['', 'Never'],
  [String(3600), '1 hour'],
  [String(86400), '1 day'],
  [String(7 * 86400), '7 days'],
  [String(30 * 86400), '30 days'],
  [String(90 * 86400), '90 days'],
  [String(365 * 86400), '1 year'],
];

function tokenStatus(token) {
  if (token.revoked_at) return {text: 'revoked', className: 'status-revoked'};
  if (token.expires_at && new Date(token.expires_at).getTime() <= Date.now()) {
    return {text: 'expired', className: 'status-expired'};
  }
  return {text: 'active', className: 'status-active'};
}

export function mountTokens(container, ctx) {
  let alive = true;
  let tokens = null;
  let shownOnce = null;  // {name, token} while its box is on screen

  const orgFilter = ctx.isPlatformAdmin && ctx.scope !== 'global' ? ctx.scope : undefined;
  const once = h('div', {class: 'token-once-slot'});
  const notice = h('div', {class: 'page-notice'});
  const listArea = h('div', {class: 'list-area'});
  const createButton = h('button', {type: 'button', class: 'btn btn-primary',
    onclick: () => openCreate()}, h('span', {class: 'btn-icon', 'aria-hidden': 'true'}, '+'),
  'Create token');

  const subtitle = ctx.isPlatformAdmin && !orgFilter
    ? 'Every token: platform tokens and those of every organization.'
    : ['Tokens of ', h('strong', {}, ctx.scopeName), '.'];
  container.append(h('section', {class: 'page', 'aria-labelledby': 'page-title'},
    h('div', {class: 'page-header'},
      h('div', {class: 'page-heading'},
        h('p', {class: 'breadcrumb'}, 'Settings'),
        h('h1', {id: 'page-title', class: 'page-title'}, 'API Tokens'),
        h('p', {class: 'page-subtitle muted'}, subtitle,
          ' Programs and workflows authenticate with a token; it is stored only as a hash.')),
      createButton),
    once,
    notice,
    listArea));

  async function load() {
    if (tokens === null) clear(listArea).append(loadingState('Loading tokens…'));
    try {
      const answer = await api('GET', '/api/v1/tokens', {query: {org_id: orgFilter}});
      if (!alive) return;
      tokens = answer || [];
      render();
    } catch (error) {
      if (!alive || error.status === 401) return;
      tokens = null;
      clear(listArea).append(errorState(error, load));
    }
  }

  function render() {
    clear(listArea);
    if (tokens.length === 0) {
      listArea.append(emptyState('No tokens yet.', 'Create one for a program or a workflow.'));
      return;
    }
    listArea.append(table({
      caption: 'API tokens',
      className: 'token-table',
      columns: [{label: 'Name'}, {label: 'Role'}, {label: 'Organization'}, {label: 'Status'},
        {label: 'Created'}, {label: 'Expires'}, {label: 'Last used'},
        {label: 'Actions', className: 'col-actions'}],
      rows: tokens.map((t) => {
        const status = tokenStatus(t);
        return row({'data-token-id': t.id},
          cell('Name', h('strong', {}, t.name || h('span', {class: 'muted'}, '(unnamed)')), 'col-nowrap'),
          cell('Role', h('span', {class: `role-badge role-${t.role}`}, t.role)),
          cell('Organization', t.org_id ? ctx.orgName(t.org_id) : h('span', {class: 'muted'}, '— (platform)')),
          cell('Status', h('span', {class: `status-badge ${status.className}`}, status.text)),
          cell('Created', h('div', {class: 'updated'}, timeElement(t.created_at),
            h('span', {class: 'muted updated-by', title: t.created_by || ''},
              `by ${formatActor(t.created_by)}`))),
          cell('Expires', t.expires_at ? timeElement(t.expires_at) : h('span', {class: 'muted'}, 'never'),
            'col-nowrap'),
          cell('Last used', t.last_used_at ? timeElement(t.last_used_at) : h('span', {class: 'muted'}, 'never'),
            'col-nowrap'),
          cell('Actions', status.text === 'revoked' ? h('span', {class: 'muted'}, '—')
            : h('button', {type: 'button', class: 'btn btn-small btn-danger-ghost',
              'aria-label': `Revoke ${t.name || t.id}`, onclick: () => revoke(t)}, 'Revoke'),
          'col-actions'));
      }),
    }));
  }

  function dismissOnce() {
    shownOnce = null;
    const input = once.querySelector('input');
    if (input) input.value = '';
    clear(once);
    createButton.focus();
  }

  function showOnce(created) {
    shownOnce = {name: created.name, token: created.token};
    const tokenInput = h('input', {id: 'new-token', class: 'input mono token-value', type: 'text',
      readOnly: true, value: shownOnce.token, spellcheck: 'false', autocomplete: 'off',
      'aria-label': 'New token', onfocus: (event) => event.target.select()});
    const copyStatus = h('span', {class: 'copy-status', role: 'status', 'aria-live': 'polite'});
    const copy = h('button', {type: 'button', class: 'btn btn-primary', onclick: async () => {
      try {
        if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
        await navigator.clipboard.writeText(tokenInput.value);
        copyStatus.textContent = 'Copied to the clipboard.';
      } catch {
        tokenInput.focus();
        tokenInput.select();
        copyStatus.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
      }
    }}, 'Copy');
    const titleId = uid('token-once-title');
    clear(once).append(h('section', {class: 'token-once', 'aria-labelledby': titleId},
      h('h2', {id: titleId, class: 'token-once-title'},
        `Token “${created.name || created.id}” created`),
      h('p', {class: 'token-once-warning'}, h('strong', {}, 'Copy it now: it will not be shown again.'),
        ' Bifrost keeps only a hash of it.'),
      h('div', {class: 'token-box'}, tokenInput, copy),
      copyStatus,
      h('div', {class: 'token-once-actions'},
        h('button', {type: 'button', class: 'btn', onclick: dismissOnce}, 'Done, I have copied it'))));
    tokenInput.focus();
  }

  async function revoke(token) {
    const name = token.name || token.id;
    const confirmed = await confirmDialog({
      title: `Revoke ${name}?`,
      message: `Revoke the token ${name}? Programs using it are refused from now on. This cannot be undone.`,
      confirmLabel: 'Revoke',
    });
    if (!confirmed || !alive) return;
    clear(notice);
    try {
      await api('DELETE', `/api/v1/tokens/${encodeURIComponent(token.id)}`);
      toast(`Revoked ${name}`);
    } catch (error) {
      if (error.status === 401) return;
      notice.append(banner('error', h('strong', {}, `Could not revoke ${name}. `), error.message));
    }
    createButton.focus();
    await load();
  }

  function openCreate() {
    const ids = {name: uid('tok-name'), role: uid('tok-role'), org: uid('tok-org'), ttl: uid('tok-ttl')};
    const formError = h('div', {class: 'form-error', role: 'alert'});
    const name = h('input', {id: ids.name, class: 'input', type: 'text', autocomplete: 'off',
      maxlength: '128', placeholder: 'e.g. ci-deploy', spellcheck: 'false'});
    const roles = ctx.isPlatformAdmin ? ['admin', 'member', 'reader', 'platform-admin']
      : ['admin', 'member', 'reader'];
    const role = h('select', {id: ids.role, class: 'select'}, roles.map((r) => h('option', {value: r}, r)));
    role.value = 'member';
    const roleHelp = h('p', {class: 'field-hint', id: `${ids.role}-hint`});
    role.setAttribute('aria-describedby', roleHelp.id);
    const describeRole = () => {
      roleHelp.textContent = {
        'platform-admin': 'Everything, in every organization and the global scope.',
        admin: 'Read, reveal and write the organization’s config; manage its tokens.',
        member: 'Read and reveal the organization’s config: what applications use.',
        reader: 'Read the organization’s config, secrets masked.',
      }[role.value];
    };
    let orgField = null;
    let org = null;
    if (ctx.isPlatformAdmin) {
      org = h('select', {id: ids.org, class: 'select'},
        ctx.orgs.map((o) => h('option', {value: o.id}, o.name)));
      if (ctx.scope !== 'global') org.value = ctx.scope;
      orgField = h('div', {class: 'field'}, h('label', {for: ids.org, class: 'label'}, 'Organization'), org);
    }
    const syncOrg = () => {
      describeRole();
      if (orgField) orgField.hidden = role.value === 'platform-admin';
    };
    role.addEventListener('change', syncOrg);
    const ttl = h('select', {id: ids.ttl, class: 'select'},
      TTL_CHOICES.map(([value, label]) => h('option', {value}, label)));
    ttl.value = String(90 * 86400);

    const submit = h('button', {type: 'submit', class: 'btn btn-primary'}, 'Create');
    let busy = false;
    const form = h('form', {class: 'modal-form', novalidate: true, onsubmit: async (event) => {
      event.preventDefault();
      if (busy) return;
      formError.replaceChildren();
      const body = {role: role.value};
      if (name.value.trim()) body.name = name.value.trim();
      if (ctx.isPlatformAdmin && role.value !== 'platform-admin') {
        if (!org.value) {
          formError.replaceChildren(h('div', {class: 'banner banner-error'},
            'Create an organization first: an org token needs one.'));
          return;
        }
        body.org_id = org.value;
      }
      if (ttl.value) body.ttl_seconds = Number(ttl.value);
      busy = true;
      submit.disabled = true;
      try {
        const created = await api('POST', '/api/v1/tokens', {body});
        dialog.close();
        showOnce(created);
        load();
      } catch (error) {
        if (error.status === 401) return;
        formError.replaceChildren(h('div', {class: 'banner banner-error'}, error.message));
      } finally {
        busy = false;
        submit.disabled = false;
      }
    }},
    formError,
    h('div', {class: 'field'}, h('label', {for: ids.name, class: 'label'}, 'Name'), name),
    h('div', {class: 'field'}, h('label', {for: ids.role, class: 'label'}, 'Role'), role, roleHelp),
    orgField,
    h('div', {class: 'field'}, h('label', {for: ids.ttl, class: 'label'}, 'Expires after'), ttl),
    h('div', {class: 'modal-actions'},
      h('button', {type: 'button', class: 'btn', onclick: () => dialog.close()}, 'Cancel'), submit));
    syncOrg();
    const dialog = openDialog({title: 'Create token', className: 'modal-token', body: form});
    name.focus();
  }

  load();
  return () => {
    alive = false;
    shownOnce = null;
    const input = once.querySelector('input');
    if (input) input.value = '';
    clear(once);
  };
}
