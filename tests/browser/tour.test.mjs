// A platform admin's tour of the main pages with realistic data, at laptop and phone width.
// Its screenshots are the artifacts people look at (docs/images/configuration.png is
// configuration.png from here); no real secret is in them.

import assert from 'node:assert/strict';
import {after, before, describe, test} from 'node:test';

import {
  PHONE, addConfig, assertNoProblems, chooseScope, configRow, dialog, fillConfigDialog,
  openBrowser, screenshot, signIn, waitForList,
} from './support/browser.mjs';
import {BifrostServer, randomText} from './support/server.mjs';

describe('a tour of the UI', () => {
  let server;
  let acme;
  const ops = {email: 'ops@example.com', password: `pw-${randomText(20)}`};

  before(async () => {
    server = await BifrostServer.start();
    acme = await server.createOrg('Acme Corp');
    const globex = await server.createOrg('Globex');
    await server.createOrg('Initech');
    await server.createUser({...ops, role: 'platform-admin'});
    await server.putConfig('global', 'region', 'string', 'eu-west-1', 'Default deployment region');
    await server.putConfig('global', 'request_timeout_ms', 'int', 30000, 'Outbound HTTP timeout');
    await server.putConfig('global', 'maintenance_mode', 'bool', false, 'Read-only mode for every org');
    await server.putConfig('global', 'log_level', 'string', 'info');
    await server.putConfig(acme.id, 'region', 'string', 'us-east-1', 'Acme runs in the US');
    await server.putConfig(acme.id, 'database_url', 'secret', `postgres://app:${randomText(16)}@db.internal/acme`,
      'Primary Postgres');
    await server.putConfig(acme.id, 'max_retries', 'int', 5, 'Retries before a job fails');
    await server.putConfig(acme.id, 'feature_flags', 'json', {new_checkout: true, beta_dashboard: false},
      'Rollout switches');
    await server.putConfig(acme.id, 'support_email', 'string', 'support@acme.example');
    await server.putConfig(globex.id, 'max_retries', 'int', 3);
    await server.call('POST', '/api/v1/tokens', {body: {name: 'billing-worker', role: 'member', org_id: acme.id}});
    await server.call('POST', '/api/v1/tokens', {body: {name: 'deploy-pipeline', role: 'admin', org_id: acme.id,
      ttl_seconds: 90 * 86400}});
  });

  after(async () => {
    if (server) await server.stop();
  });

  test('sign in, configuration, audit log and tokens at laptop width', async () => {
    const browser = await openBrowser();
    try {
      const {page} = browser;
      await signIn(page, server.url, ops.email, ops.password);
      await chooseScope(page, 'Acme Corp');
      // The docs' seed flow, with a test key.
      await addConfig(page, {key: 'api_key', type: 'Secret', value: `sk_test_${randomText(24)}`,
        description: 'Stripe API key'});
      await page.evaluate(() => document.activeElement.blur());
      const rows = await page.locator('table.config-table tbody tr').count();
      assert.equal(rows, 9);
      await screenshot(page, 'configuration', {fullPage: true});

      await page.getByRole('button', {name: 'Add Config', exact: true}).click();
      await fillConfigDialog(page, {key: 'slack_webhook_url', type: 'Secret',
        value: 'https://hooks.slack.example/placeholder', description: 'Alerts channel'});
      await dialog(page).getByLabel('Description', {exact: true}).blur();
      await screenshot(page, 'configuration-add');
      await dialog(page).getByRole('button', {name: 'Cancel', exact: true}).click();
      await dialog(page).waitFor({state: 'detached'});

      await page.getByRole('button', {name: 'Edit api_key', exact: true}).click();
      await dialog(page).getByText('Leave empty to keep the stored secret').waitFor();
      await screenshot(page, 'configuration-edit-secret');
      await dialog(page).getByRole('button', {name: 'Cancel', exact: true}).click();

      await page.getByRole('link', {name: 'Audit Log', exact: true}).click();
      await page.getByText(/Audit chain verified/).waitFor();
      await waitForList(page);
      await screenshot(page, 'audit');

      await page.getByRole('link', {name: 'API Tokens', exact: true}).click();
      await waitForList(page);
      await page.getByRole('button', {name: 'Create token', exact: true}).click();
      await dialog(page).getByLabel('Name', {exact: true}).fill('analytics-export');
      await dialog(page).getByLabel('Role', {exact: true}).selectOption('reader');
      await dialog(page).getByRole('button', {name: 'Create', exact: true}).click();
      await page.getByText('it will not be shown again').waitFor();
      await page.locator('table.token-table').getByText('analytics-export').waitFor();
      await page.getByRole('button', {name: 'Copy', exact: true}).focus();
      await screenshot(page, 'tokens');
      assertNoProblems(browser);
    } finally {
      await browser.close();
    }
  });

  test('configuration at phone width', async () => {
    const browser = await openBrowser({viewport: PHONE});
    try {
      const {page} = browser;
      await signIn(page, server.url, ops.email, ops.password);
      await chooseScope(page, 'Acme Corp');
      await configRow(page, 'database_url').waitFor();
      // Nothing is cut off sideways: the page does not scroll horizontally.
      const overflow = await page.evaluate(() =>
        document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
      await page.getByRole('button', {name: 'Edit database_url', exact: true}).isVisible();
      await screenshot(page, 'configuration-phone', {fullPage: true});
      await page.getByRole('button', {name: 'Add Config', exact: true}).click();
      await dialog(page).waitFor();
      await screenshot(page, 'configuration-add-phone');
      assertNoProblems(browser);
    } finally {
      await browser.close();
    }
  });
});
