// A real `bifrost serve` for the browser tests, started the way tests/support/server_process.cc
// starts it: `bifrost init --format json` (it prints the first admin token), then
// `bifrost serve --listen 127.0.0.1:0`, whose "listening on" line says the port. Stopped with
// SIGTERM; its temporary directory is removed afterwards.
//
// The database: a data directory in that temporary directory (SQLite), or, when
// BIFROST_TEST_BACKEND=postgresql (ctest's browser_ui_postgresql), a fresh database on the
// shared PostgreSQL test cluster of the ctest fixture `postgres` (its URL in the file named by
// BIFROST_TEST_POSTGRES_URL_FILE, or in BIFROST_TEST_POSTGRES_URL), made with psql and given
// to the server with --database; dropped after the stop.

import {execFile, spawn} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');

export function bifrostBinary() {
  const binary = process.env.BIFROST_BINARY || path.join(repoRoot, 'build', 'bifrost');
  if (!fs.existsSync(binary)) {
    throw new Error(`no bifrost binary at ${binary}: build it (make build) or set BIFROST_BINARY`);
  }
  return binary;
}

// A random string of [A-Za-z0-9] of the given length (canaries, passwords, names).
export function randomText(length = 24) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.randomBytes(length);
  let text = '';
  for (const byte of bytes) text += alphabet[byte % alphabet.length];
  return text;
}

function childEnv(extra) {
  const env = {...process.env, ...extra};
  // Nothing of the caller's own Bifrost setup leaks into the server under test.
  for (const name of ['BIFROST_TOKEN', 'BIFROST_ADDR', 'BIFROST_DATA', 'BIFROST_LISTEN',
    'BIFROST_SECRET_KEY_FILE', 'BIFROST_SECRET_KEY_PREVIOUS', 'BIFROST_TLS_CERT', 'BIFROST_TLS_KEY',
    'BIFROST_DATABASE_URL', 'BIFROST_DATABASE_POOL']) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

// Whether the servers of this run use PostgreSQL (BIFROST_TEST_BACKEND=postgresql).
export function onPostgres() {
  const backend = process.env.BIFROST_TEST_BACKEND || 'sqlite';
  if (backend !== 'sqlite' && backend !== 'postgresql') {
    throw new Error(`BIFROST_TEST_BACKEND is '${backend}': it must be sqlite or postgresql`);
  }
  return backend === 'postgresql';
}

// The URL of the shared test cluster's "postgres" database. Fails (never skips) without one.
function postgresAdminUrl() {
  let url = process.env.BIFROST_TEST_POSTGRES_URL || '';
  const file = process.env.BIFROST_TEST_POSTGRES_URL_FILE;
  if (!url && file) {
    try {
      url = fs.readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new Error(`cannot read the PostgreSQL test cluster's URL from ${file}: ${error.message}`);
    }
  }
  if (!url) {
    throw new Error('BIFROST_TEST_BACKEND=postgresql but no PostgreSQL test cluster: run through ' +
      'ctest (fixture `postgres`) or set BIFROST_TEST_POSTGRES_URL');
  }
  return url;
}

// `url` naming database `name` instead ("postgresql://user@host/NAME?params").
function withDatabase(url, name) {
  const scheme = url.indexOf('://');
  const slash = url.indexOf('/', scheme < 0 ? 0 : scheme + 3);
  if (slash < 0) throw new Error('the PostgreSQL test URL names no database');
  const query = url.indexOf('?', slash);
  return url.slice(0, slash + 1) + name + (query < 0 ? '' : url.slice(query));
}

// Runs one SQL statement with psql (Debian's postgresql-15) on `url`.
async function psql(url, sql) {
  const bin = process.env.BIFROST_PG_BIN || '/usr/lib/postgresql/15/bin';
  const result = await run(path.join(bin, 'psql'),
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], {env: childEnv({})});
  if (result.code !== 0) throw new Error(`psql failed (${result.code}): ${result.stderr}`);
}

function run(binary, args, {env, input} = {}) {
  return new Promise((resolve) => {
    const child = execFile(binary, args, {env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024},
      (error, stdout, stderr) => {
        resolve({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr});
      });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

export class BifrostServer {
  static async start() {
    const server = new BifrostServer();
    await server.#start();
    return server;
  }

  #child = null;
  #exited = null;
  #stdout = '';
  #stderr = '';

  async #start() {
    this.binary = bifrostBinary();
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrost-browser-'));
    if (onPostgres()) {
      const admin = postgresAdminUrl();
      const name = `bifrost_browser_${crypto.randomBytes(6).toString('hex')}`;
      await psql(admin, `CREATE DATABASE ${name}`);
      this.database = {admin, name};
      this.storageArgs = ['--database', withDatabase(admin, name)];
    } else {
      this.dataDir = path.join(this.dir, 'data');
      this.storageArgs = ['--data', this.dataDir];
    }
    this.secretKey = crypto.randomBytes(32).toString('base64url');
    this.env = childEnv({BIFROST_SECRET_KEY: this.secretKey});

    const init = await run(this.binary, ['init', ...this.storageArgs, '--format', 'json'],
      {env: this.env});
    if (init.code !== 0) throw new Error(`bifrost init failed (${init.code}): ${init.stderr}`);
    let printed;
    try {
      printed = JSON.parse(init.stdout);
    } catch {
      throw new Error(`bifrost init printed no JSON: ${init.stdout}`);
    }
    if (!printed.token) throw new Error(`bifrost init printed no token: ${init.stdout}`);
    this.adminToken = printed.token;

    this.#child = spawn(this.binary,
      ['serve', ...this.storageArgs, '--listen', '127.0.0.1:0'],
      {env: this.env, stdio: ['ignore', 'pipe', 'pipe']});
    this.#exited = new Promise((resolve) => this.#child.on('exit', (code, signal) => resolve({code, signal})));
    // Both pipes are drained all along, so the server never blocks on a full pipe.
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (chunk) => {
      this.#stderr = (this.#stderr + chunk).slice(-65536);
    });
    this.#child.stdout.setEncoding('utf8');
    this.url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `bifrost serve did not print its address within 30 s: ${this.#stderr}`)), 30_000);
      this.#child.stdout.on('data', (chunk) => {
        this.#stdout = (this.#stdout + chunk).slice(-65536);
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)\r?\n/.exec(this.#stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      this.#exited.then(({code, signal}) => {
        clearTimeout(timer);
        reject(new Error(`bifrost serve exited (${code ?? signal}): ${this.#stderr}`));
      });
    });
  }

  get stderr() {
    return this.#stderr;
  }

  // Stops the server with SIGTERM (SIGKILL after 60 s) and removes its directory (and its
  // PostgreSQL database).
  async stop() {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
      const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref());
      if (await Promise.race([this.#exited, timeout]) === 'timeout') {
        this.#child.kill('SIGKILL');
        await this.#exited;
      }
    }
    if (this.dir) fs.rmSync(this.dir, {recursive: true, force: true});
    if (this.database) {
      const {admin, name} = this.database;
      this.database = null;
      await psql(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  }

  // A REST call from node (not from the browser). Token: the admin bearer token by default;
  // headers: extra request headers (e.g. a Cookie).
  async api(method, apiPath, {body, token = this.adminToken, headers = {}} = {}) {
    const requestHeaders = {Accept: 'application/json', ...headers};
    if (token) requestHeaders.Authorization = `Bearer ${token}`;
    if (body !== undefined) requestHeaders['Content-Type'] = 'application/json';
    const response = await fetch(this.url + apiPath, {
      method,
      headers: requestHeaders,
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
      redirect: 'manual',
    });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return {status: response.status, text, json, headers: response.headers};
  }

  // The same, failing with the answer's text unless the status is one of `ok`.
  async call(method, apiPath, options = {}, ok = [200, 201, 204]) {
    const answer = await this.api(method, apiPath, options);
    if (!ok.includes(answer.status)) {
      throw new Error(`${method} ${apiPath} answered ${answer.status}: ${answer.text}`);
    }
    return answer.json;
  }

  async createOrg(name) {
    return this.call('POST', '/api/v1/orgs', {body: {name}});
  }

  async createUser({email, password, role, orgId}) {
    const body = {email, password, role};
    if (orgId) body.org_id = orgId;
    return this.call('POST', '/api/v1/users', {body});
  }

  configPath(scope, key) {
    const base = scope === 'global' ? '/api/v1/global/configs'
      : `/api/v1/orgs/${encodeURIComponent(scope)}/configs`;
    return key === undefined ? base : `${base}/${encodeURIComponent(key)}`;
  }

  async putConfig(scope, key, type, value, description = '') {
    return this.call('PUT', this.configPath(scope, key), {body: {type, value, description}});
  }

  // The stored value, through the reveal route with the admin bearer token (never the browser).
  async reveal(scope, key) {
    const answer = await this.api('GET', `${this.configPath(scope, key)}/reveal`);
    return answer.status === 200 ? answer.json : {status: answer.status, error: answer.json};
  }

  // A `bifrost` client command against this server.
  async cli(args, {token = this.adminToken, input} = {}) {
    return run(this.binary, args,
      {env: childEnv({BIFROST_ADDR: this.url, BIFROST_TOKEN: token}), input});
  }
}
