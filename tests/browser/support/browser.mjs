// Debian's chromium, headless, driven by playwright-core: never a downloaded browser. Each
// session gets a fresh temporary profile (--user-data-dir through launchPersistentContext).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export const CHROMIUM = process.env.BIFROST_CHROMIUM || '/usr/bin/chromium';
export const LAPTOP = {width: 1280, height: 800};
export const PHONE = {width: 390, height: 844};

export function artifactsDir() {
  const dir = process.env.BIFROST_ARTIFACTS || path.join(here, '..', 'artifacts');
  fs.mkdirSync(dir, {recursive: true});
  return dir;
}

// A browser session: {context, page, problems, close()}. `problems` collects what must never
// happen in any test: uncaught page errors and Content-Security-Policy violations.
export async function openBrowser({viewport = LAPTOP} = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no chromium at ${CHROMIUM}: run 'make deps' (it installs Debian's chromium)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrost-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport,
      locale: 'en-US',
      timezoneId: 'UTC',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (error) {
    fs.rmSync(profile, {recursive: true, force: true});
    throw error;
  }
  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] || await context.newPage();
  const problems = [];
  const watch = (p) => {
    p.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    p.on('console', (message) => {
      const text = message.text();
      if (/Content.Security.Policy|Refused to (load|execute|apply|connect|frame)/i.test(text)) {
        problems.push(`CSP violation: ${text}`);
      }
    });
  };
  watch(page);
  context.on('page', watch);
  return {
    context,
    page,
    problems,
    async close() {
      try {
        await context.close();
      } finally {
        fs.rmSync(profile, {recursive: true, force: true});
      }
    },
  };
}

export function assertNoProblems(session) {
  assert.deepEqual(session.problems, [], 'page errors or CSP violations');
}

// Signs in through the form and waits for the Configuration page.
export async function signIn(page, url, email, password) {
  await page.goto(`${url}/`);
  await page.getByLabel('Email', {exact: true}).fill(email);
  await page.getByLabel('Password', {exact: true}).fill(password);
  await page.getByRole('button', {name: 'Sign in', exact: true}).click();
  await page.getByRole('heading', {name: 'Configuration', exact: true}).waitFor();
  await waitForList(page);
}

// Waits until the current page's list (table, empty state or error) has been loaded.
export async function waitForList(page) {
  await page.locator('.list-area:not([aria-busy]) :is(table, .empty-state, .banner-error)').first()
    .waitFor();
}

export function dialog(page) {
  return page.getByRole('dialog');
}

// A row of the configuration table, found by the text of its Key cell. (Not by the cell's
// accessible name: on a phone the cells are cards whose CSS label is part of the name.)
export function configRow(page, key) {
  const exact = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return page.locator('table.config-table tbody tr').filter({
    has: page.locator('td[data-label="Key"]', {hasText: exact}),
  });
}

// The text of a row's cell in the named column (the cells carry their column's name).
export async function cellText(row, column) {
  return (await row.locator(`td[data-label="${column}"]`).innerText()).trim();
}

// The error shown next to a dialog field: the control labelled `label` is marked invalid,
// and an error text inside the same field, named by its aria-describedby, is visible.
export async function fieldError(page, label) {
  const control = dialog(page).getByLabel(label, {exact: true});
  await control.and(page.locator('[aria-invalid="true"]')).waitFor();
  return control.evaluate((el) => {
    const field = el.closest('.field');
    return (el.getAttribute('aria-describedby') || '').split(/\s+/)
      .map((id) => document.getElementById(id))
      .filter((e) => e && !e.hidden && e.classList.contains('field-error') && field.contains(e))
      .map((e) => e.textContent.trim())
      .join(' ');
  });
}

// Fills the Add / Edit dialog. value: text for string/int/json/secret, 'true'/'false' for bool.
export async function fillConfigDialog(page, {key, type, value, description}) {
  const d = dialog(page);
  if (key !== undefined) await d.getByLabel('Key', {exact: true}).fill(key);
  if (type !== undefined) await d.getByLabel('Type', {exact: true}).selectOption({label: type});
  if (value !== undefined) {
    const control = d.getByLabel('Value', {exact: true});
    if (await control.evaluate((el) => el.tagName === 'SELECT')) await control.selectOption(value);
    else await control.fill(value);
  }
  if (description !== undefined) await d.getByLabel('Description', {exact: true}).fill(description);
}

// Add Config → fill → Save, and wait for the dialog to close and the row to show.
export async function addConfig(page, fields) {
  await page.getByRole('button', {name: 'Add Config', exact: true}).click();
  await dialog(page).waitFor();
  await fillConfigDialog(page, fields);
  await dialog(page).getByRole('button', {name: 'Save', exact: true}).click();
  await dialog(page).waitFor({state: 'detached'});
  await configRow(page, fields.key).waitFor();
}

export async function chooseScope(page, label) {
  await page.getByRole('combobox', {name: 'Organization', exact: true}).selectOption({label});
  await page.getByRole('heading', {name: 'Configuration', exact: true}).waitFor();
  await waitForList(page);
}

// Everything a script on the page can read: its DOM (with the values of form fields, which
// the markup does not show), web storage and its cookies.
export async function pageReadable(page) {
  return page.evaluate(() => {
    const fields = [...document.querySelectorAll('input, textarea, select')].map((e) => e.value);
    const storage = (s) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`).join('\n');
    return [document.documentElement.outerHTML, fields.join('\n'), storage(localStorage),
      storage(sessionStorage), document.cookie].join('\n');
  });
}

// A screenshot in the artifacts directory (toasts removed first: they come and go).
export async function screenshot(page, name, options = {}) {
  await page.evaluate(() => {
    for (const toast of document.querySelectorAll('.toast')) toast.remove();
  });
  const file = path.join(artifactsDir(), `${name}.png`);
  await page.screenshot({path: file, ...options});
  return file;
}
