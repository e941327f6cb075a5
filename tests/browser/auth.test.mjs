// Signing in and out: the sign-in page, a wrong password, the session cookie, CSRF, sign out.

import assert from 'node:assert/strict';
import {after, before, describe, test} from 'node:test';

import {assertNoProblems, openBrowser, screenshot, signIn} from './support/browser.mjs';
import {BifrostServer, randomText} from './support/server.mjs';

describe('sign in and sign out', () => {
  let server;
  let browser;
  const email = 'ops@example.com';
  const password = `pw-${randomText(20)}`;

  before(async () => {
    server = await BifrostServer.start();
    await server.createUser({email, password, role: 'platform-admin'});
    browser = await openBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  test('a wrong password shows the server\'s message, the right one signs in', async () => {
    const {page} = browser;
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', {name: 'Sign in', exact: true}).waitFor();
    await screenshot(page, 'signin');

    await page.getByLabel('Email', {exact: true}).fill(email);
    await page.getByLabel('Password', {exact: true}).fill(`${password}-wrong`);
    await page.getByRole('button', {name: 'Sign in', exact: true}).click();
    const alert = page.getByRole('alert').filter({hasText: /wrong email or password/i});
    await alert.waitFor();
    // Still on the sign-in page, with the password cleared.
    assert.equal(await page.getByLabel('Password', {exact: true}).inputValue(), '');
    assert.equal(await page.getByRole('navigation').count(), 0);

    await page.getByLabel('Password', {exact: true}).fill(password);
    await page.getByRole('button', {name: 'Sign in', exact: true}).click();
    await page.getByRole('heading', {name: 'Configuration', exact: true}).waitFor();
    assert.equal(new URL(page.url()).hash, '#/settings/configuration');

    // The header names the user and the role; the navigation has the Settings entries.
    const header = page.getByRole('banner');
    await header.getByText(email, {exact: true}).waitFor();
    await header.getByText('platform-admin', {exact: true}).waitFor();
    const nav = page.getByRole('navigation', {name: 'Main'});
    for (const name of ['Settings', 'Configuration', 'Audit Log', 'API Tokens']) {
      await nav.getByRole('link', {name, exact: true}).waitFor();
    }
    assertNoProblems(browser);
  });

  test('the session cookie is HttpOnly and SameSite=Strict, and survives a reload', async () => {
    const {page, context} = browser;
    const cookies = await context.cookies(server.url);
    const session = cookies.find((c) => c.name === 'bifrost_session');
    assert.ok(session, 'a bifrost_session cookie is set');
    assert.match(session.value, /^bfs_[A-Za-z0-9_-]{43}$/);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    const readable = await page.evaluate(() => document.cookie);
    assert.ok(!readable.includes('bifrost_session') && !readable.includes(session.value),
      'document.cookie must not expose the session');

    await page.reload();
    await page.getByRole('heading', {name: 'Configuration', exact: true}).waitFor();
    assert.equal(await page.getByLabel('Password', {exact: true}).count(), 0);
  });

  test('a state-changing request with the cookie but without the CSRF header is refused', async () => {
    const {page} = browser;
    const answer = await page.evaluate(async () => {
      const response = await fetch('/api/v1/orgs', {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({name: 'Forged'}),
      });
      return {status: response.status, body: await response.text()};
    });
    assert.equal(answer.status, 403, answer.body);
    assert.match(answer.body, /csrf/);
    const orgs = await server.call('GET', '/api/v1/orgs');
    assert.ok(!orgs.some((o) => o.name === 'Forged'));
  });

  test('sign out ends the session: the old cookie gets 401', async () => {
    const {page, context} = browser;
    const before = (await context.cookies(server.url)).find((c) => c.name === 'bifrost_session');
    assert.ok(before);
    const cookie = {Cookie: `bifrost_session=${before.value}`};
    assert.equal((await server.api('GET', '/api/v1/auth/session', {token: null, headers: cookie})).status, 200);

    await page.getByRole('button', {name: 'Sign out', exact: true}).click();
    await page.getByLabel('Email', {exact: true}).waitFor();
    assert.equal(new URL(page.url()).hash, '#/signin');

    const afterOut = await server.api('GET', '/api/v1/auth/session', {token: null, headers: cookie});
    assert.equal(afterOut.status, 401, afterOut.text);
    const fromPage = await page.evaluate(async () =>
      (await fetch('/api/v1/auth/session', {credentials: 'same-origin'})).status);
    assert.equal(fromPage, 401);

    // A page of the app now leads back to the sign-in form.
    await page.goto(`${server.url}/#/settings/configuration`);
    await page.getByLabel('Email', {exact: true}).waitFor();
    assertNoProblems(browser);
  });

  test('signing in again returns to the page that was asked for', async () => {
    const {page} = browser;
    await page.goto(`${server.url}/#/settings/tokens`);
    await page.getByLabel('Email', {exact: true}).waitFor();
    await page.getByLabel('Email', {exact: true}).fill(email);
    await page.getByLabel('Password', {exact: true}).fill(password);
    await page.getByRole('button', {name: 'Sign in', exact: true}).click();
    await page.getByRole('heading', {name: 'API Tokens', exact: true}).waitFor();
    assertNoProblems(browser);
  });
});

describe('an expired session', () => {
  test('a 401 in the middle of a session leads back to the sign-in page', async () => {
    const server = await BifrostServer.start();
    const browser = await openBrowser();
    try {
      const email = 'ana@example.com';
      const password = `pw-${randomText(20)}`;
      await server.createUser({email, password, role: 'platform-admin'});
      await signIn(browser.page, server.url, email, password);
      // The session ends behind the page's back (a new password ends every session).
      await server.call('PUT', `/api/v1/users/${encodeURIComponent(email)}/password`,
        {body: {password: `pw-${randomText(20)}`}});
      await browser.page.getByRole('link', {name: 'Audit Log', exact: true}).click();
      await browser.page.getByLabel('Email', {exact: true}).waitFor();
      await browser.page.getByText(/session has ended/i).waitFor();
      assertNoProblems(browser);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});
