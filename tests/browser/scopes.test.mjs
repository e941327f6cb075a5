// Organizations and the global scope: the platform admin's switcher, inherited and
// overriding entries, and users of one organization who never see another.

import assert from 'node:assert/strict';
import {after, before, describe, test} from 'node:test';

import {
  assertNoProblems, cellText, chooseScope, configRow, dialog, openBrowser, signIn, waitForList,
} from './support/browser.mjs';
import {BifrostServer, randomText} from './support/server.mjs';

async function keysShown(page) {
  return page.locator('table.config-table tbody td[data-label="Key"]').allInnerTexts();
}

describe('organizations and the global scope', () => {
  let server;
  let acme;
  let globex;
  const users = {
    ops: {email: 'ops@example.com', password: `pw-${randomText(20)}`, role: 'platform-admin'},
    ana: {email: 'ana@acme.example', password: `pw-${randomText(20)}`, role: 'admin'},
    rui: {email: 'rui@globex.example', password: `pw-${randomText(20)}`, role: 'reader'},
  };

  before(async () => {
    server = await BifrostServer.start();
    acme = await server.createOrg('Acme Corp');
    globex = await server.createOrg('Globex');
    await server.putConfig('global', 'region', 'string', 'eu-west-1', 'Default region');
    await server.putConfig('global', 'timeout_seconds', 'int', 30);
    await server.putConfig(acme.id, 'region', 'string', 'us-east-1', 'Acme runs in the US');
    await server.putConfig(acme.id, 'acme_only', 'string', 'a');
    await server.putConfig(globex.id, 'globex_only', 'string', 'g');
    await server.createUser({...users.ops});
    await server.createUser({...users.ana, orgId: acme.id});
    await server.createUser({...users.rui, orgId: globex.id});
  });

  after(async () => {
    if (server) await server.stop();
  });

  test('a platform admin switches between organizations and Global', async () => {
    const browser = await openBrowser();
    try {
      const {page} = browser;
      await signIn(page, server.url, users.ops.email, users.ops.password);
      const switcher = page.getByRole('combobox', {name: 'Organization', exact: true});
      const options = await switcher.locator('option').allInnerTexts();
      assert.deepEqual(options, ['Acme Corp', 'Globex', 'Global']);

      await chooseScope(page, 'Acme Corp');
      assert.deepEqual(await keysShown(page), ['acme_only', 'region', 'timeout_seconds']);
      assert.equal(await cellText(configRow(page, 'acme_only'), 'Scope'), 'org');
      assert.equal(await cellText(configRow(page, 'region'), 'Scope'), 'org (overrides global)');
      assert.equal(await cellText(configRow(page, 'region'), 'Value'), 'us-east-1');
      assert.equal(await cellText(configRow(page, 'timeout_seconds'), 'Scope'), 'global (inherited)');
      // An inherited entry can be overridden (Edit) but not deleted from the organization.
      await page.getByRole('button', {name: 'Edit timeout_seconds', exact: true}).waitFor();
      assert.equal(await page.getByRole('button', {name: 'Delete timeout_seconds', exact: true}).count(), 0);
      await page.getByRole('button', {name: 'Delete region', exact: true}).waitFor();

      await chooseScope(page, 'Globex');
      assert.deepEqual(await keysShown(page), ['globex_only', 'region', 'timeout_seconds']);
      assert.equal(await cellText(configRow(page, 'region'), 'Scope'), 'global (inherited)');
      assert.equal(await cellText(configRow(page, 'region'), 'Value'), 'eu-west-1');

      await chooseScope(page, 'Global');
      assert.deepEqual(await keysShown(page), ['region', 'timeout_seconds']);
      assert.equal(await cellText(configRow(page, 'region'), 'Scope'), 'global');
      assert.equal(await cellText(configRow(page, 'region'), 'Value'), 'eu-west-1');
      await page.getByText('global scope').first().waitFor();

      // The choice survives a reload.
      await page.reload();
      await waitForList(page);
      assert.equal(await switcher.inputValue(), 'global');
      assertNoProblems(browser);
    } finally {
      await browser.close();
    }
  });

  test('editing an inherited entry creates an override; deleting it inherits again', async () => {
    const browser = await openBrowser();
    try {
      const {page} = browser;
      await signIn(page, server.url, users.ops.email, users.ops.password);
      await chooseScope(page, 'Globex');
      await page.getByRole('button', {name: 'Edit timeout_seconds', exact: true}).click();
      const d = dialog(page);
      await d.getByRole('heading', {name: 'Override timeout_seconds'}).waitFor();
      assert.equal(await d.getByLabel('Value', {exact: true}).inputValue(), '30');
      await d.getByLabel('Value', {exact: true}).fill('45');
      await d.getByRole('button', {name: 'Save', exact: true}).click();
      await d.waitFor({state: 'detached'});
      const row = configRow(page, 'timeout_seconds');
      await row.locator('td[data-label="Scope"]', {hasText: 'org (overrides global)'}).waitFor();
      assert.equal(await cellText(row, 'Value'), '45');
      assert.equal((await server.reveal(globex.id, 'timeout_seconds')).value, 45);
      assert.equal((await server.reveal('global', 'timeout_seconds')).value, 30, 'global unchanged');
      assert.equal((await server.reveal(acme.id, 'timeout_seconds')).value, 30, 'Acme still inherits');

      await page.getByRole('button', {name: 'Delete timeout_seconds', exact: true}).click();
      await dialog(page).getByText(/inherits the global value again/).waitFor();
      await dialog(page).getByRole('button', {name: 'Delete', exact: true}).click();
      await dialog(page).waitFor({state: 'detached'});
      await row.locator('td[data-label="Scope"]', {hasText: 'global (inherited)'}).waitFor();
      assert.equal(await cellText(row, 'Value'), '30');
      assertNoProblems(browser);
    } finally {
      await browser.close();
    }
  });

  test('an org admin sees its organization only, and gets 403 for another', async () => {
    const browser = await openBrowser();
    try {
      const {page} = browser;
      await signIn(page, server.url, users.ana.email, users.ana.password);
      // No switcher: the organization's name only.
      assert.equal(await page.getByRole('combobox', {name: 'Organization'}).count(), 0);
      await page.getByRole('banner').getByText('Acme Corp', {exact: true}).waitFor();
      assert.equal(await page.getByText('Globex').count(), 0);
      assert.deepEqual(await keysShown(page), ['acme_only', 'region', 'timeout_seconds']);
      assert.equal(await cellText(configRow(page, 'region'), 'Scope'), 'org (overrides global)');
      assert.equal(await cellText(configRow(page, 'timeout_seconds'), 'Scope'), 'global (inherited)');
      // An org admin manages its org: Add Config, Audit Log, API Tokens.
      await page.getByRole('button', {name: 'Add Config', exact: true}).waitFor();
      await page.getByRole('link', {name: 'Audit Log', exact: true}).waitFor();

      // The browser session itself cannot reach another organization.
      const status = await page.evaluate(async (paths) => {
        const out = {};
        for (const p of paths) out[p] = (await fetch(p, {credentials: 'same-origin'})).status;
        return out;
      }, [`/api/v1/orgs/${globex.id}/configs`, `/api/v1/orgs/${globex.id}/configs/globex_only`,
        `/api/v1/orgs/${globex.id}`]);
      for (const [p, code] of Object.entries(status)) assert.equal(code, 403, p);
      const orgs = await page.evaluate(async () =>
        (await fetch('/api/v1/orgs', {credentials: 'same-origin'})).json());
      assert.deepEqual(orgs.map((o) => o.name), ['Acme Corp']);
      // A direct write to another org, with the CSRF token the page holds, is refused too.
      const write = await page.evaluate(async (orgId) => {
        const session = await (await fetch('/api/v1/auth/session', {credentials: 'same-origin'})).json();
        const response = await fetch(`/api/v1/orgs/${orgId}/configs/planted`, {
          method: 'PUT', credentials: 'same-origin',
          headers: {'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token},
          body: JSON.stringify({type: 'string', value: 'x'}),
        });
        return response.status;
      }, globex.id);
      assert.equal(write, 403);
      assert.equal((await server.reveal(globex.id, 'planted')).status, 404);
      assertNoProblems(browser);
    } finally {
      await browser.close();
    }
  });

  test('a reader sees the configuration read-only and no admin pages', async () => {
    const browser = await openBrowser();
    try {
      const {page} = browser;
      await signIn(page, server.url, users.rui.email, users.rui.password);
      assert.deepEqual(await keysShown(page), ['globex_only', 'region', 'timeout_seconds']);
      assert.equal(await page.getByRole('button', {name: 'Add Config'}).count(), 0);
      assert.equal(await page.getByRole('button', {name: /^Edit /}).count(), 0);
      assert.equal(await page.getByRole('link', {name: 'Audit Log'}).count(), 0);
      assert.equal(await page.getByRole('link', {name: 'API Tokens'}).count(), 0);
      await page.goto(`${server.url}/#/settings/audit`);
      await page.getByText('This page is for administrators').waitFor();
      assertNoProblems(browser);
    } finally {
      await browser.close();
    }
  });
});
