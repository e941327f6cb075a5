// The sign-in page: email and password → POST /api/v1/auth/login → a session cookie.

import {api} from '/assets/api.js';
import {h} from '/assets/dom.js';

export function mountSignIn(container, {notice, onSignedIn}) {
  const email = h('input', {id: 'signin-email', name: 'email', type: 'email', class: 'input',
    autocomplete: 'username', required: true, spellcheck: 'false', autocapitalize: 'off'});
  const password = h('input', {id: 'signin-password', name: 'password', type: 'password',
    class: 'input', autocomplete: 'current-password', required: true});
  const alert = h('div', {class: 'signin-alert', role: 'alert', 'aria-live': 'assertive'});
  const submit = h('button', {type: 'submit', class: 'btn btn-primary btn-block'}, 'Sign in');
  let busy = false;

  const showError = (message) => {
    alert.replaceChildren(h('div', {class: 'banner banner-error'}, message));
  };

  const form = h('form', {class: 'signin-form', novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (busy) return;
    if (!email.value.trim() || !password.value) {
      showError('Enter your email and password.');
      (email.value.trim() ? password : email).focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    alert.replaceChildren();
    try {
      const session = await api('POST', '/api/v1/auth/login', {
        body: {email: email.value.trim(), password: password.value},
        quiet401: true,
      });
      password.value = '';
      await onSignedIn(session);
    } catch (error) {
      password.value = '';
      showError(error.message || 'Sign-in failed.');
      password.focus();
    } finally {
      busy = false;
      submit.disabled = false;
    }
  }},
  h('div', {class: 'field'},
    h('label', {for: 'signin-email', class: 'label'}, 'Email'), email),
  h('div', {class: 'field'},
    h('label', {for: 'signin-password', class: 'label'}, 'Password'), password),
  alert,
  submit);

  container.append(h('main', {class: 'signin-page'},
    h('div', {class: 'signin-card'},
      h('div', {class: 'signin-brand'},
        h('img', {src: '/assets/logo.svg', alt: '', width: '40', height: '40'}),
        h('span', {class: 'brand-name'}, 'Bifrost')),
      h('h1', {class: 'signin-title'}, 'Sign in'),
      h('p', {class: 'muted signin-subtitle'},
        'Configuration and secrets for your organizations.'),
      notice ? h('div', {class: 'banner banner-info', role: 'status'}, notice) : null,
      form),
    h('p', {class: 'signin-footer muted'},
      'Programs use API tokens; people sign in here.')));
  email.focus();
  return () => {
    password.value = '';
  };
}
