// Settings → Configuration of one organization: add each type, the seed flow of the docs
// (api_key as a Secret), editing a secret with an empty and with a new value, delete with a
// confirmation, and the errors shown next to their field.

import assert from 'node:assert/strict';
import {after, before, describe, test} from 'node:test';

import {
  addConfig, assertNoProblems, cellText, configRow, dialog, fieldError, fillConfigDialog,
  openBrowser, pageReadable, screenshot, signIn,
} from './support/browser.mjs';
import {BifrostServer, randomText} from './support/server.mjs';

describe('configuration page', () => {
  let server;
  let browser;
  let page;
  let org;
  const orgName = 'Acme Corp';
  const email = 'ops@example.com';
  const password = `pw-${randomText(20)}`;
  const seedSecret = `sk_live_${randomText(24)}`;
  const newSecret = `sk_live_${randomText(24)}`;
  const dbPassword = `db_${randomText(24)}`;
  // PUT / PATCH / DELETE requests the page sent to the config routes.
  const writes = [];

  before(async () => {
    server = await BifrostServer.start();
    org = await server.createOrg(orgName);
    await server.createUser({email, password, role: 'platform-admin'});
    browser = await openBrowser();
    page = browser.page;
    page.on('request', (request) => {
      if (request.method() !== 'GET' && request.url().includes('/configs/')) {
        writes.push({method: request.method(), url: request.url(), body: request.postData()});
      }
    });
    await signIn(page, server.url, email, password);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  test('an empty organization shows the empty state', async () => {
    await page.getByText('No config yet.').waitFor();
    await page.getByRole('button', {name: 'Add Config', exact: true}).waitFor();
  });

  test('adds a config of each type', async () => {
    await addConfig(page, {key: 'greeting', type: 'String', value: 'hello world', description: 'Shown on the home page'});
    await addConfig(page, {key: 'retries', type: 'Int', value: '5', description: 'HTTP retries'});
    await addConfig(page, {key: 'maintenance', type: 'Bool', value: 'false'});
    await addConfig(page, {key: 'limits', type: 'JSON', value: '{"rps": 10, "burst": [1, 2]}'});
    await page.getByRole('button', {name: 'Add Config', exact: true}).click();
    // The value field follows the type: a password field for a secret.
    await dialog(page).getByLabel('Type', {exact: true}).selectOption({label: 'Secret'});
    assert.equal(await dialog(page).getByLabel('Value', {exact: true}).getAttribute('type'), 'password');
    await dialog(page).getByRole('button', {name: 'Cancel', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    await addConfig(page, {key: 'db_password', type: 'Secret', value: dbPassword});

    const expected = {
      greeting: ['String', 'hello world'],
      retries: ['Int', '5'],
      maintenance: ['Bool', 'false'],
      limits: ['JSON', '{"rps":10,"burst":[1,2]}'],
      db_password: ['Secret', '••••••••'],
    };
    for (const [key, [type, value]] of Object.entries(expected)) {
      const row = configRow(page, key);
      assert.equal(await cellText(row, 'Type'), type, key);
      assert.ok((await cellText(row, 'Value')).startsWith(value), `${key}: ${await cellText(row, 'Value')}`);
      assert.equal(await cellText(row, 'Scope'), 'org', key);
      assert.match(await cellText(row, 'Updated'), new RegExp(`by ${email}`), key);
    }
    assert.equal(await cellText(configRow(page, 'greeting'), 'Description'), 'Shown on the home page');

    // What the server stored, read from node with the admin token.
    const stored = async (key) => server.reveal(org.id, key);
    assert.deepEqual([(await stored('greeting')).type, (await stored('greeting')).value], ['string', 'hello world']);
    assert.deepEqual([(await stored('retries')).type, (await stored('retries')).value], ['int', 5]);
    assert.deepEqual([(await stored('maintenance')).type, (await stored('maintenance')).value], ['bool', false]);
    assert.deepEqual((await stored('limits')).value, {rps: 10, burst: [1, 2]});
    assert.deepEqual([(await stored('db_password')).type, (await stored('db_password')).value], ['secret', dbPassword]);
    // The int went as a JSON number, the bool as a JSON boolean.
    const retriesWrite = writes.find((w) => w.url.endsWith('/configs/retries'));
    assert.equal(JSON.parse(retriesWrite.body).value, 5);
    assert.equal(JSON.parse(retriesWrite.body).expected_version, 0);
    assert.equal(JSON.parse(writes.find((w) => w.url.endsWith('/configs/maintenance')).body).value, false);
    assertNoProblems(browser);
  });

  test('seed flow: api_key as a Secret is stored and shown masked', async () => {
    await page.getByRole('button', {name: 'Add Config', exact: true}).click();
    await fillConfigDialog(page, {key: 'api_key', type: 'Secret', value: seedSecret,
      description: 'Payment provider'});
    await screenshot(page, 'configuration-add-dialog');
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    const row = configRow(page, 'api_key');
    await row.waitFor();
    assert.equal(await cellText(row, 'Type'), 'Secret');
    assert.ok((await cellText(row, 'Value')).startsWith('••••••••'));
    assert.ok(!(await pageReadable(page)).includes(seedSecret), 'the secret is not in the page');
    assert.equal((await server.reveal(org.id, 'api_key')).value, seedSecret);
    await screenshot(page, 'configuration-table');
  });

  test('editing a secret with an empty value keeps the stored secret', async () => {
    const versionBefore = (await server.reveal(org.id, 'api_key')).version;
    await page.getByRole('button', {name: 'Edit api_key', exact: true}).click();
    const d = dialog(page);
    await d.waitFor();
    const key = d.getByLabel('Key', {exact: true});
    assert.equal(await key.inputValue(), 'api_key');
    assert.equal(await key.getAttribute('readonly'), '');
    assert.equal(await d.getByLabel('Type', {exact: true}).inputValue(), 'secret');
    assert.equal(await d.getByLabel('Value', {exact: true}).inputValue(), '');
    await d.getByText('Leave empty to keep the stored secret').waitFor();
    assert.equal(await d.getByLabel('Description', {exact: true}).inputValue(), 'Payment provider');

    const sent = writes.length;
    await d.getByLabel('Description', {exact: true}).fill('Stripe live key');
    await d.getByRole('button', {name: 'Save', exact: true}).click();
    await d.waitFor({state: 'detached'});
    await configRow(page, 'api_key').filter({hasText: 'Stripe live key'}).waitFor();

    // A PATCH of the description only, against the version shown.
    const patch = writes.slice(sent);
    assert.equal(patch.length, 1);
    assert.equal(patch[0].method, 'PATCH');
    assert.deepEqual(JSON.parse(patch[0].body), {description: 'Stripe live key', expected_version: versionBefore});
    const stored = await server.reveal(org.id, 'api_key');
    assert.equal(stored.value, seedSecret, 'the secret is kept');
    assert.equal(stored.type, 'secret');
    assert.equal(stored.description, 'Stripe live key');
  });

  test('editing a secret with a new value replaces it', async () => {
    await page.getByRole('button', {name: 'Edit api_key', exact: true}).click();
    await dialog(page).waitFor();
    await dialog(page).getByLabel('Value', {exact: true}).fill(newSecret);
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    await configRow(page, 'api_key').waitFor();
    assert.equal((await server.reveal(org.id, 'api_key')).value, newSecret);
    // And what a program gets: `bifrost config get`.
    const get = await server.cli(['config', 'get', 'api_key', '--org', orgName]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, `${newSecret}\n`);
    const readable = await pageReadable(page);
    assert.ok(!readable.includes(newSecret) && !readable.includes(seedSecret));
  });

  test('editing a value prefills it and saves the change', async () => {
    await page.getByRole('button', {name: 'Edit retries', exact: true}).click();
    const value = dialog(page).getByLabel('Value', {exact: true});
    assert.equal(await value.inputValue(), '5');
    assert.equal(await value.getAttribute('inputmode'), 'numeric');
    await value.fill('7');
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    await configRow(page, 'retries').locator('td[data-label="Value"]', {hasText: '7'}).waitFor();
    assert.equal((await server.reveal(org.id, 'retries')).value, 7);

    await page.getByRole('button', {name: 'Edit maintenance', exact: true}).click();
    assert.equal(await dialog(page).getByLabel('Value', {exact: true}).inputValue(), 'false');
    await dialog(page).getByLabel('Value', {exact: true}).selectOption('true');
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    await configRow(page, 'maintenance').locator('td[data-label="Value"]', {hasText: 'true'}).waitFor();
    assert.equal((await server.reveal(org.id, 'maintenance')).value, true);
  });

  test('delete asks for a confirmation that names the key', async () => {
    await page.getByRole('button', {name: 'Delete greeting', exact: true}).click();
    let confirm = dialog(page);
    await confirm.getByText('Delete greeting?').first().waitFor();
    await confirm.getByRole('button', {name: 'Cancel', exact: true}).click();
    await confirm.waitFor({state: 'detached'});
    assert.equal((await server.reveal(org.id, 'greeting')).value, 'hello world', 'Cancel deletes nothing');

    await page.getByRole('button', {name: 'Delete greeting', exact: true}).click();
    confirm = dialog(page);
    await confirm.getByText('Delete greeting?').first().waitFor();
    await confirm.getByRole('button', {name: 'Delete', exact: true}).click();
    await confirm.waitFor({state: 'detached'});
    await configRow(page, 'greeting').waitFor({state: 'detached'});
    assert.equal((await server.reveal(org.id, 'greeting')).status, 404);
    const deletion = writes.findLast((w) => w.method === 'DELETE');
    assert.match(deletion.url, /\/configs\/greeting\?expected_version=\d+$/);
  });

  test('an invalid key shows the server\'s error next to Key and saves nothing', async () => {
    const before = await server.call('GET', server.configPath(org.id));
    await page.getByRole('button', {name: 'Add Config', exact: true}).click();
    await fillConfigDialog(page, {key: 'bad key!', type: 'String', value: 'x'});
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    const message = await fieldError(page, 'Key');
    assert.match(message, /key/i);
    assert.match(message, /bad key!/);
    assert.ok(await dialog(page).isVisible(), 'the dialog stays open');
    await screenshot(page, 'configuration-invalid-key');
    await dialog(page).getByRole('button', {name: 'Cancel', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    assert.deepEqual(await server.call('GET', server.configPath(org.id)), before);
  });

  test('invalid JSON shows an inline error and is never sent', async () => {
    const sent = writes.length;
    await page.getByRole('button', {name: 'Add Config', exact: true}).click();
    await fillConfigDialog(page, {key: 'broken_json', type: 'JSON', value: '{"a": 1,'});
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    assert.match(await fieldError(page, 'Value'), /Invalid JSON/);
    assert.equal(writes.length, sent, 'nothing was sent');
    // Fixed, it saves.
    await dialog(page).getByLabel('Value', {exact: true}).fill('{"a": 1}');
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    assert.deepEqual((await server.reveal(org.id, 'broken_json')).value, {a: 1});
  });

  test('a duplicate key shows an error next to Key and overwrites nothing', async () => {
    await page.getByRole('button', {name: 'Add Config', exact: true}).click();
    await fillConfigDialog(page, {key: 'api_key', type: 'String', value: 'oops'});
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    assert.match(await fieldError(page, 'Key'), /exists/i);
    await dialog(page).getByRole('button', {name: 'Cancel', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    const stored = await server.reveal(org.id, 'api_key');
    assert.equal(stored.type, 'secret');
    assert.equal(stored.value, newSecret);
  });

  test('a value the type refuses shows the server\'s error next to Value', async () => {
    await page.getByRole('button', {name: 'Add Config', exact: true}).click();
    await fillConfigDialog(page, {key: 'timeout', type: 'Int', value: 'abc'});
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    assert.match(await fieldError(page, 'Value'), /int/);
    // Escape closes the dialog, as Cancel does.
    await page.keyboard.press('Escape');
    await dialog(page).waitFor({state: 'detached'});
    assert.equal((await server.reveal(org.id, 'timeout')).status, 404);
  });

  test('a 64-bit int beyond 2^53 is shown, edited and stored exactly', async () => {
    const big = '9007199254740993';  // 2^53 + 1: a double would round it
    await addConfig(page, {key: 'big_counter', type: 'Int', value: big});
    assert.equal(await cellText(configRow(page, 'big_counter'), 'Value'), big);
    const raw = await server.api('GET', `${server.configPath(org.id, 'big_counter')}/reveal`);
    assert.match(raw.text, new RegExp(`"value":\\s*${big}\\b`));
    await page.getByRole('button', {name: 'Edit big_counter', exact: true}).click();
    assert.equal(await dialog(page).getByLabel('Value', {exact: true}).inputValue(), big);
    await dialog(page).getByLabel('Description', {exact: true}).fill('exact');
    await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
    await dialog(page).waitFor({state: 'detached'});
    await configRow(page, 'big_counter').getByText('exact').waitFor();
    const again = await server.api('GET', `${server.configPath(org.id, 'big_counter')}/reveal`);
    assert.match(again.text, new RegExp(`"value":\\s*${big}\\b`));
  });

  test('the filter narrows the table by key', async () => {
    const filter = page.getByLabel('Filter', {exact: true});
    await filter.fill('RETR');
    await configRow(page, 'api_key').waitFor({state: 'detached'});
    assert.equal(await page.locator('table.config-table tbody tr').count(), 1);
    await configRow(page, 'retries').waitFor();
    await filter.fill('nothing_like_this');
    await page.getByText('No key matches').waitFor();
    await filter.fill('');
    await configRow(page, 'api_key').waitFor();
    assertNoProblems(browser);
  });

  test('the page works from the keyboard', async () => {
    // Tab to Add Config, open it, type, and Save with Enter.
    await page.getByRole('button', {name: 'Add Config', exact: true}).focus();
    await page.keyboard.press('Enter');
    await dialog(page).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.closest('dialog') !== null), true,
      'focus moves into the dialog');
    await page.keyboard.type('region');
    await page.keyboard.press('Tab');  // the key's hint is text, the next stop is Type
    await page.keyboard.press('Tab');
    await page.keyboard.type('eu-west');
    await page.keyboard.press('Enter');
    await dialog(page).waitFor({state: 'detached'});
    await configRow(page, 'region').waitFor();
    assert.equal((await server.reveal(org.id, 'region')).value, 'eu-west');
    assertNoProblems(browser);
  });
});
