// Settings → Audit Log (admins): GET /api/v1/audit, newest first, filtered and paged with
// `before`; the hash chain's status from GET /api/v1/audit/verify.

import {api} from '/assets/api.js';
import {
  h, clear, row, banner, cell, emptyState, errorState, formatActor, loadingState, table,
  timeStack,
} from '/assets/dom.js';

const PAGE_SIZE = 50;
const KNOWN_ACTIONS = [
  'config.create', 'config.update', 'config.delete', 'config.write', 'config.reveal',
  'config.read', 'org.create', 'org.delete', 'org.read', 'org.list', 'token.create',
  'token.revoke', 'token.list', 'user.create', 'user.disable', 'user.password', 'auth.login',
  'auth.logout', 'auth.failure', 'audit.read', 'audit.prune',
];

// <input type="datetime-local"> gives local wall time without a zone; the API wants RFC 3339.
function toRfc3339(localValue) {
  if (!localValue) return undefined;
  const date = new Date(localValue);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

export function mountAudit(container, ctx) {
  let alive = true;
  let records = [];
  let nextBefore = null;
  let filters = {};

  const orgFilter = ctx.isPlatformAdmin && ctx.scope !== 'global' ? ctx.scope : undefined;
  const chainStatus = h('div', {class: 'chain-status'});
  const listArea = h('div', {class: 'list-area'});
  const more = h('div', {class: 'load-more'});

  const input = (id, label, attrs) => {
    const control = h('input', {id, name: id, class: 'input', autocomplete: 'off', ...attrs});
    return {control, wrapper: h('div', {class: 'filter-field'},
      h('label', {for: id, class: 'label'}, label), control)};
  };
  const keyFilter = input('audit-key', 'Key', {type: 'text', spellcheck: 'false', placeholder: 'api_key'});
  const actionFilter = input('audit-action', 'Action', {type: 'text', list: 'audit-actions',
    spellcheck: 'false', placeholder: 'config.update'});
  const actorFilter = input('audit-actor', 'Actor', {type: 'text', spellcheck: 'false',
    placeholder: 'name or id'});
  const sinceFilter = input('audit-since', 'Since', {type: 'datetime-local', step: '1'});
  const untilFilter = input('audit-until', 'Until', {type: 'datetime-local', step: '1'});
  const outcomeSelect = h('select', {id: 'audit-outcome', class: 'select'},
    h('option', {value: ''}, 'Any'), h('option', {value: 'success'}, 'success'),
    h('option', {value: 'denied'}, 'denied'), h('option', {value: 'error'}, 'error'));

  const filterForm = h('form', {class: 'filters', 'aria-label': 'Audit filters', novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      filters = {
        key: keyFilter.control.value.trim(),
        action: actionFilter.control.value.trim(),
        actor: actorFilter.control.value.trim(),
        outcome: outcomeSelect.value,
        since: toRfc3339(sinceFilter.control.value),
        until: toRfc3339(untilFilter.control.value),
      };
      load(false);
    }},
  keyFilter.wrapper, actionFilter.wrapper, actorFilter.wrapper,
  h('div', {class: 'filter-field'}, h('label', {for: 'audit-outcome', class: 'label'}, 'Outcome'),
    outcomeSelect),
  sinceFilter.wrapper, untilFilter.wrapper,
  h('div', {class: 'filter-actions'},
    h('button', {type: 'submit', class: 'btn btn-primary'}, 'Apply filters'),
    h('button', {type: 'button', class: 'btn', onclick: () => {
      filterForm.reset();
      filters = {};
      load(false);
    }}, 'Clear')),
  h('datalist', {id: 'audit-actions'}, KNOWN_ACTIONS.map((a) => h('option', {value: a}))));

  const scopeText = ctx.isPlatformAdmin
    ? (orgFilter ? ['Records of ', h('strong', {}, ctx.scopeName), '.']
      : ['All records: every organization, the global scope and platform operations.'])
    : ['Records of ', h('strong', {}, ctx.scopeName), '.'];

  container.append(h('section', {class: 'page', 'aria-labelledby': 'page-title'},
    h('div', {class: 'page-header'},
      h('div', {class: 'page-heading'},
        h('p', {class: 'breadcrumb'}, 'Settings'),
        h('h1', {id: 'page-title', class: 'page-title'}, 'Audit Log'),
        h('p', {class: 'page-subtitle muted'}, ...scopeText,
          ' Every change, reveal, denial and sign-in is recorded in a hash chain.'))),
    chainStatus,
    filterForm,
    listArea,
    more));

  async function verify() {
    clear(chainStatus).append(loadingState('Verifying the audit chain…'));
    try {
      const result = await api('GET', '/api/v1/audit/verify');
      if (!alive) return;
      const again = h('button', {type: 'button', class: 'btn btn-small banner-action',
        onclick: verify}, 'Verify again');
      if (result && result.ok) {
        const range = result.records > 0 ? ` (sequence ${result.first_seq}–${result.last_seq})` : '';
        clear(chainStatus).append(banner('success', h('span', {class: 'chain-icon', 'aria-hidden': 'true'}),
          h('strong', {}, `Audit chain verified: ${result.records} records`), range, '.', again));
      } else {
        clear(chainStatus).append(banner('error', h('strong', {}, 'Audit chain verification failed. '),
          (result && result.error) || 'The chain does not verify.', again));
      }
    } catch (error) {
      if (!alive || error.status === 401) return;
      clear(chainStatus).append(banner('warning', 'Audit chain status unavailable: ', error.message));
    }
  }

  async function load(append) {
    const query = {...filters, org_id: orgFilter, limit: PAGE_SIZE,
      before: append ? nextBefore : undefined};
    if (!append) {
      clear(listArea).append(loadingState('Loading audit records…'));
      clear(more);
    } else {
      clear(more).append(loadingState('Loading more…'));
    }
    try {
      const page = await api('GET', '/api/v1/audit', {query});
      if (!alive) return;
      records = append ? records.concat(page.records) : page.records;
      nextBefore = page.next_before;
      render();
    } catch (error) {
      if (!alive || error.status === 401) return;
      if (append) clear(more).append(errorState(error, () => load(true)));
      else clear(listArea).append(errorState(error, () => load(false)));
    }
  }

  function render() {
    clear(listArea);
    clear(more);
    const filtered = Object.values(filters).some((v) => v);
    if (records.length === 0) {
      listArea.append(emptyState(filtered ? 'No record matches these filters.' : 'No audit records yet.'));
      return;
    }
    listArea.append(table({
      caption: 'Audit records, newest first',
      className: 'audit-table',
      columns: [{label: 'Time', className: 'col-time'}, {label: 'Action', className: 'col-action'},
        {label: 'Outcome', className: 'col-outcome'}, {label: 'Org', className: 'col-org'},
        {label: 'Key', className: 'col-key'}, {label: 'Actor', className: 'col-actor'},
        {label: 'Client', className: 'col-client'}, {label: 'Detail', className: 'col-detail'}],
      rows: records.map((r) => row({'data-seq': String(r.seq)},
        cell('Time', timeStack(r.time), 'col-time'),
        cell('Action', h('code', {class: 'action'}, r.action)),
        cell('Outcome', h('span', {class: `outcome-badge outcome-${r.outcome}`}, r.outcome)),
        cell('Organization', r.org_id ? ctx.orgName(r.org_id) : h('span', {class: 'muted'}, '—')),
        cell('Key', r.config_key ? h('code', {}, r.config_key) : h('span', {class: 'muted'}, '—')),
        cell('Actor', h('span', {title: r.actor_id || ''}, formatActor(r.actor_name || r.actor_id))),
        cell('Client', r.client_address ? h('code', {class: 'client'}, r.client_address)
          : h('span', {class: 'muted'}, 'local')),
        cell('Detail', r.detail || h('span', {class: 'muted'}, '—'), 'col-detail'))),
    }));
    more.append(h('p', {class: 'muted'}, `${records.length} records shown`),
      nextBefore ? h('button', {type: 'button', class: 'btn', onclick: () => load(true)}, 'Load more')
        : null);
  }

  verify();
  load(false);
  return () => {
    alive = false;
  };
}
