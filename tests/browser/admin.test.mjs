// Settings → API Tokens (a token shown once, revoke) and Settings → Audit Log (the changes
// made, filters, paging, the chain's status).

import assert from 'node:assert/strict';
import {after, before, describe, test} from 'node:test';

import {
  addConfig, assertNoProblems, chooseScope, configRow, dialog, openBrowser, pageReadable,
  screenshot, signIn, waitForList,
} from './support/browser.mjs';
import {BifrostServer, randomText} from './support/server.mjs';

describe('admin pages', () => {
  let server;
  let browser;
  let page;
  let acme;
  const email = 'ops@example.com';
  const password = `pw-${randomText(20)}`;
  let createdToken = null;

  before(async () => {
    server = await BifrostServer.start();
    acme = await server.createOrg('Acme Corp');
    await server.createOrg('Globex');
    await server.createUser({email, password, role: 'platform-admin'});
    browser = await openBrowser();
    page = browser.page;
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], {origin: server.url});
    await signIn(page, server.url, email, password);
    await chooseScope(page, 'Acme Corp');
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  test('a new token is shown once, with a Copy button, then only its name', async () => {
    await page.getByRole('link', {name: 'API Tokens', exact: true}).click();
    await page.getByRole('heading', {name: 'API Tokens', exact: true}).waitFor();
    await waitForList(page);

    await page.getByRole('button', {name: 'Create token', exact: true}).click();
    const d = dialog(page);
    await d.getByLabel('Name', {exact: true}).fill('ci-deploy');
    await d.getByLabel('Role', {exact: true}).selectOption('member');
    assert.equal(await d.getByLabel('Organization', {exact: true}).inputValue(), acme.id);
    await d.getByLabel('Expires after', {exact: true}).selectOption({label: '30 days'});
    await d.getByRole('button', {name: 'Create', exact: true}).click();
    await d.waitFor({state: 'detached'});

    const box = page.getByRole('region', {name: /ci-deploy.*created/});
    await box.getByText('it will not be shown again').waitFor();
    createdToken = await box.getByLabel('New token').inputValue();
    assert.match(createdToken, /^bft_[A-Za-z0-9_-]{20,}$/);
    await page.locator('table.token-table').getByText('ci-deploy').waitFor();
    await screenshot(page, 'tokens-shown-once');

    await box.getByRole('button', {name: 'Copy', exact: true}).click();
    await box.getByText(/Copied|Selected/).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
    if (copied !== null) assert.equal(copied, createdToken);

    // The token works, with what was asked for.
    const who = await server.call('GET', '/api/v1/whoami', {token: createdToken});
    assert.equal(who.name, 'ci-deploy');
    assert.equal(who.role, 'member');
    assert.equal(who.org_id, acme.id);

    await box.getByRole('button', {name: /Done/}).click();
    await box.waitFor({state: 'detached'});
    assert.ok(!(await pageReadable(page)).includes(createdToken), 'gone after Done');
    const row = page.locator('table.token-table tbody tr').filter({hasText: 'ci-deploy'});
    await row.getByText('member', {exact: true}).waitFor();
    await row.getByText('active', {exact: true}).waitFor();
    await row.getByText('Acme Corp', {exact: true}).waitFor();
    assertNoProblems(browser);
  });

  test('leaving the page also drops a token shown once', async () => {
    await page.getByRole('button', {name: 'Create token', exact: true}).click();
    await dialog(page).getByLabel('Name', {exact: true}).fill('temporary');
    await dialog(page).getByRole('button', {name: 'Create', exact: true}).click();
    const box = page.getByRole('region', {name: /temporary.*created/});
    const token = await box.getByLabel('New token').inputValue();
    assert.match(token, /^bft_/);
    await page.getByRole('link', {name: 'Configuration', exact: true}).click();
    await waitForList(page);
    await page.getByRole('link', {name: 'API Tokens', exact: true}).click();
    await waitForList(page);
    assert.equal(await page.getByText('will not be shown again').count(), 0);
    assert.ok(!(await pageReadable(page)).includes(token));
  });

  test('revoking a token asks first, then the token is refused', async () => {
    await page.getByRole('button', {name: 'Revoke ci-deploy', exact: true}).click();
    await dialog(page).getByText('Revoke the token ci-deploy?').waitFor();
    await dialog(page).getByRole('button', {name: 'Revoke', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    const row = page.locator('table.token-table tbody tr').filter({hasText: 'ci-deploy'});
    await row.getByText('revoked', {exact: true}).waitFor();
    assert.equal((await server.api('GET', '/api/v1/whoami', {token: createdToken})).status, 401);
    assertNoProblems(browser);
  });

  test('the audit log lists the changes made in the UI and shows the chain verified', async () => {
    await page.getByRole('link', {name: 'Configuration', exact: true}).click();
    await waitForList(page);
    await addConfig(page, {key: 'audit_probe', type: 'String', value: 'one'});
    await page.getByRole('button', {name: 'Edit audit_probe', exact: true}).click();
    await dialog(page).getByLabel('Value', {exact: true}).fill('two');
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    await configRow(page, 'audit_probe').getByText('two').waitFor();
    await page.getByRole('button', {name: 'Delete audit_probe', exact: true}).click();
    await dialog(page).getByRole('button', {name: 'Delete', exact: true}).click();
    await configRow(page, 'audit_probe').waitFor({state: 'detached'});

    await page.getByRole('link', {name: 'Audit Log', exact: true}).click();
    await page.getByRole('heading', {name: 'Audit Log', exact: true}).waitFor();
    await waitForList(page);
    const status = page.getByText(/Audit chain verified: \d+ records/);
    await status.waitFor();
    const verified = await server.call('GET', '/api/v1/audit/verify');
    assert.equal(verified.ok, true);

    const rows = page.locator('table.audit-table tbody tr');
    const probe = rows.filter({hasText: 'audit_probe'});
    for (const action of ['config.create', 'config.update', 'config.delete']) {
      const row = probe.filter({has: page.getByText(action, {exact: true})});
      await row.first().waitFor();
      assert.match(await row.first().innerText(), new RegExp(email.replace('.', '\\.')));
      assert.match(await row.first().innerText(), /success/);
      assert.match(await row.first().innerText(), /Acme Corp/);
    }
    await screenshot(page, 'audit-log');

    // Filters: key and action.
    await page.getByLabel('Key', {exact: true}).fill('audit_probe');
    await page.getByLabel('Action', {exact: true}).fill('config.update');
    await page.getByRole('button', {name: 'Apply filters', exact: true}).click();
    await rows.first().waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('table.audit-table tbody tr')]
      .every((tr) => tr.innerText.includes('config.update')));
    assert.equal(await rows.count(), 1);

    // Actor and time: nothing in the future; the user's own records by their email.
    await page.getByRole('button', {name: 'Clear', exact: true}).click();
    await page.getByLabel('Since', {exact: true}).fill('2999-01-01T00:00:00');
    await page.getByRole('button', {name: 'Apply filters', exact: true}).click();
    await page.getByText('No record matches these filters.').waitFor();
    await page.getByRole('button', {name: 'Clear', exact: true}).click();
    await page.getByLabel('Until', {exact: true}).fill('2000-01-01T00:00:00');
    await page.getByRole('button', {name: 'Apply filters', exact: true}).click();
    await page.getByText('No record matches these filters.').waitFor();
    await page.getByRole('button', {name: 'Clear', exact: true}).click();
    await waitForList(page);
    assertNoProblems(browser);
  });

  test('the audit log pages with Load more and follows the switcher', async () => {
    // More records than a page: 60 writes from node.
    for (let i = 0; i < 60; i += 1) {
      await server.putConfig(acme.id, `bulk_${String(i).padStart(2, '0')}`, 'int', i);
    }
    await page.reload();
    await page.getByRole('heading', {name: 'Audit Log', exact: true}).waitFor();
    await waitForList(page);
    const rows = page.locator('table.audit-table tbody tr');
    assert.equal(await rows.count(), 50);
    await page.getByRole('button', {name: 'Load more', exact: true}).click();
    await page.waitForFunction(() => document.querySelectorAll('table.audit-table tbody tr').length > 50);
    const seqs = await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.seq)));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => b - a), 'newest first, no repeats');
    assert.equal(new Set(seqs).size, seqs.length);

    // Another organization's log has none of Acme's records.
    await chooseScopeOnAudit(page, 'Globex');
    await page.getByText(/No audit records yet|No record matches/).or(
      page.locator('table.audit-table')).first().waitFor();
    const texts = await page.locator('table.audit-table tbody tr').allInnerTexts();
    assert.ok(texts.every((t) => !t.includes('Acme Corp')), 'no Acme record in Globex\'s log');
    assertNoProblems(browser);
  });
});

async function chooseScopeOnAudit(page, label) {
  await page.getByRole('combobox', {name: 'Organization', exact: true}).selectOption({label});
  await page.getByRole('heading', {name: 'Audit Log', exact: true}).waitFor();
  await waitForList(page);
}
