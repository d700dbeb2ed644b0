// Berth's local OpenID Connect provider, for development and tests only.
//
// A real provider (npm `oidc-provider`, OpenID-certified) with one confidential client for
// Berth, the demo users of users.json, its own small login page and a persisted RS256 key.
// See ../../docs/sso.md and ../../../shared/docs/sso-local.md. Never expose it beyond loopback:
// the passwords are public.
//
// Settings (environment):
//   IDP_PORT                       port to listen on (default 4444); pick it before starting,
//                                  port 0 cannot work because the issuer must be known first
//   IDP_HOST                       address to bind (default 127.0.0.1)
//   IDP_ISSUER                     issuer URL, exactly as Berth is configured
//                                  (default http://127.0.0.1:<IDP_PORT>)
//   IDP_CLIENT_ID / IDP_CLIENT_SECRET        Berth's client (berth-local / berth-local-secret)
//   IDP_REDIRECT_URIS              comma-separated (default http://127.0.0.1:3000/auth/callback)
//   IDP_POST_LOGOUT_REDIRECT_URIS  comma-separated (default http://127.0.0.1:3000/)
//   IDP_KEY_FILE                   signing key (JWKS with private parts), created when missing;
//                                  relative paths are from the repository root
//                                  (default .local/test-idp/jwks.json, git-ignored)
//   IDP_USERS_FILE                 demo users (default users.json beside this script); read
//                                  again when it changes, so a test can remove a group or a
//                                  person while sessions are open
//   IDP_REFRESH_TOKENS             "0" issues no refresh tokens (Berth then re-checks groups
//                                  with UserInfo while the access token lasts)
//   IDP_ID_TOKEN_GROUPS            "0" leaves `groups` out of the ID token (userinfo still has
//                                  it), like IdPs that only serve groups at userinfo
//   IDP_QUIET                      "1" silences the per-request log lines

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');

function list(value, fallback) {
  const raw = value === undefined || value.trim() === '' ? fallback : value;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const port = Number.parseInt(process.env.IDP_PORT || '4444', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`test-idp: IDP_PORT must be a port number between 1 and 65535, got '${process.env.IDP_PORT}'`);
  process.exit(2);
}
const host = process.env.IDP_HOST || '127.0.0.1';
const issuer = process.env.IDP_ISSUER || `http://127.0.0.1:${port}`;
const clientId = process.env.IDP_CLIENT_ID || 'berth-local';
const clientSecret = process.env.IDP_CLIENT_SECRET || 'berth-local-secret';
const redirectUris = list(process.env.IDP_REDIRECT_URIS, 'http://127.0.0.1:3000/auth/callback');
const postLogoutRedirectUris = list(process.env.IDP_POST_LOGOUT_REDIRECT_URIS, 'http://127.0.0.1:3000/');
const keyFileSetting = process.env.IDP_KEY_FILE || '.local/test-idp/jwks.json';
const keyFile = isAbsolute(keyFileSetting) ? keyFileSetting : join(repoRoot, keyFileSetting);
const usersFile = process.env.IDP_USERS_FILE || join(here, 'users.json');
const groupsInIdToken = process.env.IDP_ID_TOKEN_GROUPS !== '0';
const refreshTokens = process.env.IDP_REFRESH_TOKENS !== '0';
const quiet = process.env.IDP_QUIET === '1';

const SCOPES = 'openid profile email groups';

// ---------------------------------------------------------------------------------------------
// Demo users

function loadUsers() {
  const raw = JSON.parse(readFileSync(usersFile, 'utf8'));
  const users = new Map();
  for (const [username, u] of Object.entries(raw.users ?? {})) {
    if (typeof u.password !== 'string' || !Array.isArray(u.groups)) {
      throw new Error(`${usersFile}: user '${username}' needs a password and a groups array`);
    }
    users.set(username, { username, ...u });
  }
  return users;
}
let users = loadUsers();
let usersStamp = statSync(usersFile).mtimeMs;
// The users as the file says now: a changed file is read again (a broken one is reported and
// the last good list kept).
function currentUsers() {
  try {
    const stamp = statSync(usersFile).mtimeMs;
    if (stamp !== usersStamp) {
      users = loadUsers();
      usersStamp = stamp;
      if (!quiet) console.log(`test-idp: ${usersFile} changed; ${users.size} users`);
    }
  } catch (err) {
    console.error(`test-idp: cannot read ${usersFile} again: ${err.message}`);
  }
  return users;
}

// Compare digests so the time taken does not depend on how much of a password matched.
function passwordMatches(given, expected) {
  const a = createHash('sha256').update(String(given)).digest();
  const b = createHash('sha256').update(String(expected)).digest();
  return timingSafeEqual(a, b);
}

function claimsOf(user, use) {
  const claims = {
    sub: user.username,
    name: user.name,
    preferred_username: user.username,
    email: user.email,
    email_verified: true,
  };
  if (use !== 'id_token' || groupsInIdToken) {
    claims.groups = user.groups;
  }
  return claims;
}

// ---------------------------------------------------------------------------------------------
// Signing key, persisted so restarts keep the same `kid` (Berth caches the JWKS).

function loadOrCreateKeys() {
  const jwks = readOrCreateKeys();
  // A step of start-up in the log: a provider that never listens shows how far it got.
  if (!quiet) console.log(`test-idp: signing key ready (${keyFile})`);
  return jwks;
}

function readOrCreateKeys() {
  if (existsSync(keyFile)) {
    const jwks = JSON.parse(readFileSync(keyFile, 'utf8'));
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) {
      throw new Error(`${keyFile}: not a JWKS with private keys; delete it to create a new one`);
    }
    return jwks;
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = createHash('sha256').update(jwk.n).digest('base64url').slice(0, 16);
  const jwks = { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] };
  mkdirSync(dirname(keyFile), { recursive: true });
  // Write then rename: several providers started at once (parallel tests) never read half a file.
  const tmp = `${keyFile}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, keyFile);
  return JSON.parse(readFileSync(keyFile, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// Pages

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

const STYLE = `body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0;padding:48px 16px;color:#1d2733}
main{max-width:360px;margin:0 auto;background:#fff;border-radius:8px;padding:24px 28px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.25rem;margin:0 0 4px}p.sub{color:#5a6775;margin:0 0 20px;font-size:.9rem}
label{display:block;font-weight:600;margin:12px 0 4px}input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px;border:1px solid #b7c0ca;border-radius:4px;font-size:1rem}
.actions{display:flex;gap:8px;margin-top:20px}button{flex:1;padding:9px;border:0;border-radius:4px;font-size:1rem;cursor:pointer}
button.primary{background:#1f5fbf;color:#fff}button.secondary{background:#e3e8ee;color:#1d2733}
.error{background:#fdecea;color:#8a1c12;border:1px solid #f5c2bc;border-radius:4px;padding:8px 10px;margin:0 0 8px}
footer{max-width:360px;margin:12px auto;color:#6b7785;font-size:.8rem;text-align:center}`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main><footer>Berth test identity provider &middot; development only</footer></body></html>`;
}

function loginPage({ uid, clientName, username = '', error }) {
  return page('Sign in · Berth test IdP', `
<h1>Sign in</h1>
<p class="sub">to continue to ${esc(clientName)}</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" value="${esc(username)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <div class="actions">
    <button class="primary" type="submit">Sign in</button>
  </div>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort">
  <div class="actions"><button class="secondary" type="submit">Cancel</button></div>
</form>`);
}

function send(res, status, html, headers = {}) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    ...headers,
  });
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// ---------------------------------------------------------------------------------------------
// Provider

const clientNames = new Map([[clientId, 'Berth']]);

const configuration = {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    client_name: 'Berth',
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogoutRedirectUris,
    response_types: ['code'],
    grant_types: refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  responseTypes: ['code'],
  pkce: { required: () => true },
  // Put the scope's claims in the ID token too (the default keeps them for userinfo only).
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
  jwks: loadOrCreateKeys(),
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // Refresh tokens without the offline_access scope, as Keycloak gives them: Berth uses them
  // to ask again about a person's groups during a session.
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  ttl: {
    RefreshToken: 8 * 3600,
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Session: 8 * 3600,
    Grant: 8 * 3600,
  },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // The hint comes from a registered client: confirm by itself (a button stays for no-JS).
      async logoutSource(ctx, form) {
        ctx.body = page('Signing out · Berth test IdP', `
<h1>Signing out</h1>
<p class="sub">Ending your session at the test identity provider.</p>
${form}
<input type="hidden" name="logout" value="yes" form="op.logoutForm">
<div class="actions"><button class="primary" type="submit" form="op.logoutForm">Sign out</button></div>
<script>document.getElementById('op.logoutForm').submit()</script>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out · Berth test IdP', '<h1>Signed out</h1><p class="sub">You are signed out of the test identity provider.</p>');
      },
    },
  },
  // Consent is implied for Berth (a first-party client): grant the standard scopes at once.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(SCOPES);
    await grant.save();
    return grant;
  },
  async findAccount(_ctx, id) {
    const user = currentUsers().get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims(use) {
        return claimsOf(user, use);
      },
    };
  },
  interactions: {
    url(_ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error · Berth test IdP', `<h1>Something went wrong</h1>
<p class="error" role="alert">${esc(out.error)}: ${esc(out.error_description)}</p>`);
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('test-idp: server error:', err));

const oidcCallback = provider.callback();

async function interaction(req, res, url) {
  const parts = url.pathname.split('/').filter(Boolean); // ['interaction', uid, action?]
  const [, uid, action] = parts;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    send(res, 400, page('Sign-in expired · Berth test IdP', `<h1>Sign-in expired</h1>
<p class="error" role="alert">This sign-in attempt is no longer valid. Go back to the application and start again.</p>`));
    return;
  }
  if (details.uid !== uid) {
    send(res, 400, page('Error · Berth test IdP', '<p class="error" role="alert">Interaction mismatch.</p>'));
    return;
  }
  const clientName = clientNames.get(details.params.client_id) || details.params.client_id;

  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') {
      send(res, 200, loginPage({ uid, clientName }));
    } else {
      // Any other prompt (consent): implied for Berth, see loadExistingGrant.
      const grant = new provider.Grant({ clientId: details.params.client_id, accountId: details.session.accountId });
      grant.addOIDCScope(SCOPES);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const username = (form.get('username') || '').trim();
    const user = currentUsers().get(username);
    const ok = passwordMatches(form.get('password') || '', user ? user.password : `!${randomBytes(8).toString('hex')}`);
    if (!user || !ok) {
      if (!quiet) console.log(`test-idp: failed sign-in for '${username}'`);
      send(res, 401, loginPage({ uid, clientName, username, error: 'Invalid username or password.' }));
      return;
    }
    if (!quiet) console.log(`test-idp: '${username}' signed in`);
    await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'POST' && action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'The user cancelled the sign-in.',
    }, { mergeWithLastSubmission: false });
    return;
  }
  send(res, 405, page('Error · Berth test IdP', '<p class="error">Method not allowed.</p>'));
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status: 'ok', issuer }));
      return;
    }
    if (url.pathname === '/interaction' || url.pathname.startsWith('/interaction/')) {
      await interaction(req, res, url);
      return;
    }
    oidcCallback(req, res);
  } catch (err) {
    console.error('test-idp: request failed:', err);
    if (!res.headersSent) send(res, 500, page('Error · Berth test IdP', '<p class="error">Internal error.</p>'));
    else res.end();
  }
});

server.on('error', (err) => {
  console.error(`test-idp: cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, host, () => {
  console.log(`test-idp: issuer ${issuer} listening on http://${host}:${port} (client '${clientId}', ${users.size} users, groups in ID token: ${groupsInIdToken})`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
