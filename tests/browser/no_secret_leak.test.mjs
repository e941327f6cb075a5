// No secret reaches the browser (docs/web-ui.md, "What the browser never gets"): every
// response of whole sessions is recorded, and none holds a secret value stored during them,
// whether it was stored through the UI or by REST from node; nor does the page's DOM, its
// web storage or the cookies a script can read. Also the headers of the page itself.

import assert from 'node:assert/strict';
import {after, before, describe, test} from 'node:test';

import {
  addConfig, assertNoProblems, chooseScope, configRow, dialog, fillConfigDialog, openBrowser,
  pageReadable, signIn, waitForList,
} from './support/browser.mjs';
import {BifrostServer, randomText} from './support/server.mjs';

// Records every response a page receives, with its body.
function recordResponses(page) {
  const recorded = [];
  const pending = [];
  page.on('response', (response) => {
    pending.push((async () => {
      const entry = {url: response.url(), status: response.status(), body: null, error: null};
      try {
        entry.body = (await response.body()).toString('utf8');
      } catch (error) {
        // Redirects and some aborted loads have no body to read.
        entry.error = String(error && error.message);
      }
      recorded.push(entry);
    })());
  });
  return {
    recorded,
    async settle() {
      let count;
      do {
        count = pending.length;
        await Promise.all(pending);
      } while (count !== pending.length);
    },
  };
}

describe('no secret reaches the browser', () => {
  let server;
  let acme;
  let globex;
  const ops = {email: 'ops@example.com', password: `pw-${randomText(20)}`};
  const ana = {email: 'ana@acme.example', password: `pw-${randomText(20)}`};
  const canaries = {
    seed: `sk_live_${randomText(24)}`,         // the seed flow, in the UI
    edited: `sk_live_${randomText(24)}`,       // the new value of an edit, in the UI
    restOrg: `rest_org_${randomText(24)}`,     // stored by REST from node in Acme
    restGlobal: `rest_glob_${randomText(24)}`, // a global secret every org inherits, by REST
    override: `override_${randomText(24)}`,    // a Globex override of the global secret, in the UI
    uiGlobal: `ui_glob_${randomText(24)}`,     // a global secret added in the UI
    restLater: `rest_late_${randomText(24)}`,  // stored by REST while the page is open
  };

  before(async () => {
    server = await BifrostServer.start();
    acme = await server.createOrg('Acme Corp');
    globex = await server.createOrg('Globex');
    await server.createUser({...ops, role: 'platform-admin'});
    await server.createUser({...ana, role: 'admin', orgId: acme.id});
    await server.putConfig(acme.id, 'db_password', 'secret', canaries.restOrg, 'Postgres');
    await server.putConfig('global', 'webhook_signing_key', 'secret', canaries.restGlobal);
    await server.putConfig(acme.id, 'retries', 'int', 3);
  });

  after(async () => {
    if (server) await server.stop();
  });

  test('the page is served with a strict CSP and security headers', async () => {
    const browser = await openBrowser();
    try {
      const response = await browser.page.goto(`${server.url}/`);
      assert.equal(response.status(), 200);
      const headers = response.headers();
      const csp = headers['content-security-policy'] || '';
      for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'",
        "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]) {
        assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
      }
      assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), csp);
      assert.equal((headers['x-frame-options'] || '').toUpperCase(), 'DENY');
      assert.equal(headers['referrer-policy'], 'no-referrer');
      assert.equal(headers['x-content-type-options'], 'nosniff');
      assert.match(headers['content-type'] || '', /^text\/html/);
      // The assets: same headers, right types.
      for (const [asset, type] of [['app.js', /javascript/], ['app.css', /text\/css/]]) {
        const answer = await server.api('GET', `/assets/${asset}`, {token: null});
        assert.equal(answer.status, 200, asset);
        assert.match(answer.headers.get('content-type'), type, asset);
        assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', asset);
      }
      await browser.page.getByLabel('Email', {exact: true}).waitFor();
      assertNoProblems(browser);
    } finally {
      await browser.close();
    }
  });

  test('a whole session receives no secret value', async () => {
    const admin = await openBrowser();
    const orgAdmin = await openBrowser();
    const adminLog = recordResponses(admin.page);
    const orgAdminLog = recordResponses(orgAdmin.page);
    const requests = [];
    for (const session of [admin, orgAdmin]) {
      session.page.on('request', (r) => requests.push(r.url()));
    }
    try {
      const {page} = admin;
      await signIn(page, server.url, ops.email, ops.password);
      assert.equal((await page.evaluate(() => document.cookie)).includes('bifrost_session'), false,
        'the session cookie is HttpOnly');
      await chooseScope(page, 'Acme Corp');

      // The seed flow, then an edit with an empty value, then one with a new value.
      await addConfig(page, {key: 'api_key', type: 'Secret', value: canaries.seed});
      await page.getByRole('button', {name: 'Edit api_key', exact: true}).click();
      await dialog(page).getByLabel('Description', {exact: true}).fill('Stripe');
      await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
      await configRow(page, 'api_key').getByText('Stripe').waitFor();
      await page.getByRole('button', {name: 'Edit api_key', exact: true}).click();
      await dialog(page).getByLabel('Value', {exact: true}).fill(canaries.edited);
      await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
      await dialog(page).waitFor({state: 'detached'});
      // Opening the editor of secrets fetches nothing that could hold them.
      for (const key of ['db_password', 'webhook_signing_key']) {
        await page.getByRole('button', {name: `Edit ${key}`, exact: true}).click();
        assert.equal(await dialog(page).getByLabel('Value', {exact: true}).inputValue(), '');
        await dialog(page).getByRole('button', {name: 'Cancel', exact: true}).click();
        await dialog(page).waitFor({state: 'detached'});
      }

      // Globex: override the inherited global secret.
      await chooseScope(page, 'Globex');
      await page.getByRole('button', {name: 'Edit webhook_signing_key', exact: true}).click();
      await dialog(page).getByLabel('Value', {exact: true}).fill(canaries.override);
      await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
      await dialog(page).waitFor({state: 'detached'});
      await configRow(page, 'webhook_signing_key').getByText('org (overrides global)').waitFor();

      // Global: add a secret there.
      await chooseScope(page, 'Global');
      await page.getByRole('button', {name: 'Add Config', exact: true}).click();
      await fillConfigDialog(page, {key: 'smtp_password', type: 'Secret', value: canaries.uiGlobal});
      await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
      await dialog(page).waitFor({state: 'detached'});
      await configRow(page, 'smtp_password').waitFor();

      // A secret stored from node while the page is open, then every page again.
      await server.putConfig(acme.id, 'late_secret', 'secret', canaries.restLater);
      await chooseScope(page, 'Acme Corp');
      await configRow(page, 'late_secret').waitFor();
      await page.getByLabel('Filter', {exact: true}).fill('secret');
      await page.getByRole('link', {name: 'Audit Log', exact: true}).click();
      await page.getByText(/Audit chain verified/).waitFor();
      await waitForList(page);
      await page.getByRole('link', {name: 'API Tokens', exact: true}).click();
      await waitForList(page);
      await page.getByRole('link', {name: 'Configuration', exact: true}).click();
      await waitForList(page);
      await page.reload();
      await waitForList(page);

      // The org admin's session: Acme's configuration (own, inherited) and its audit log.
      await signIn(orgAdmin.page, server.url, ana.email, ana.password);
      await configRow(orgAdmin.page, 'api_key').waitFor();
      await configRow(orgAdmin.page, 'webhook_signing_key').waitFor();
      await orgAdmin.page.getByRole('button', {name: 'Edit api_key', exact: true}).click();
      await dialog(orgAdmin.page).getByRole('button', {name: 'Cancel', exact: true}).click();
      await orgAdmin.page.getByRole('link', {name: 'Audit Log', exact: true}).click();
      await waitForList(orgAdmin.page);

      // Every secret of the session is really stored (else this test would prove nothing).
      const stored = {
        [canaries.edited]: await server.reveal(acme.id, 'api_key'),
        [canaries.restOrg]: await server.reveal(acme.id, 'db_password'),
        [canaries.restGlobal]: await server.reveal('global', 'webhook_signing_key'),
        [canaries.override]: await server.reveal(globex.id, 'webhook_signing_key'),
        [canaries.uiGlobal]: await server.reveal('global', 'smtp_password'),
        [canaries.restLater]: await server.reveal(acme.id, 'late_secret'),
      };
      for (const [value, entry] of Object.entries(stored)) assert.equal(entry.value, value);
      const history = await server.call('GET', `/api/v1/audit?org_id=${acme.id}&key=api_key&action=config.update`);
      assert.ok(history.records.length >= 2, 'the seed secret was stored, then replaced');

      // Now the responses, the pages and what scripts can read.
      await adminLog.settle();
      await orgAdminLog.settle();
      const responses = [...adminLog.recorded, ...orgAdminLog.recorded];
      const apiBodies = responses.filter((r) => new URL(r.url).pathname.startsWith('/api/'));
      assert.ok(apiBodies.length >= 30, `recorded ${apiBodies.length} API responses`);
      assert.ok(responses.some((r) => r.body && r.body.includes('"[SECRET]"')),
        'the lists of secrets were recorded (masked)');
      assert.deepEqual(apiBodies.filter((r) => r.body === null && r.status !== 204)
        .map((r) => `${r.url}: ${r.error}`), [], 'every API body was read');
      assert.deepEqual(requests.filter((u) => u.includes('/reveal')), [], 'no reveal was asked for');
      for (const [name, value] of Object.entries(canaries)) {
        const leaks = responses.filter((r) => r.body && r.body.includes(value)).map((r) => r.url);
        assert.deepEqual(leaks, [], `the ${name} secret is in a response`);
      }
      for (const session of [admin, orgAdmin]) {
        const readable = await pageReadable(session.page);
        for (const [name, value] of Object.entries(canaries)) {
          assert.ok(!readable.includes(value), `the ${name} secret is in the page or its storage`);
        }
        assert.ok(!readable.includes('bfs_'), 'the session token is not readable by scripts');
        assertNoProblems(session);
      }
    } finally {
      await admin.close();
      await orgAdmin.close();
    }
  });
});
