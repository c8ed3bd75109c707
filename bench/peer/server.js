// The peer: node's oidc-provider (OpenID Certified) configured like IdentityService's benchmark tenant:
// client_credentials, authorization_code + PKCE (S256), refresh_token rotated on every use,
// JWT access tokens (ES256 by default, RS256 for the *-rs clients), RS256 ID tokens, long lifetimes.
// Storage is in memory (adapter.js: oidc-provider's development adapter's semantics, without its cost per token
// growing with the grant's tokens), or Redis when PEER_REDIS names a server (redis-adapter.js, bench/run.sh
// --peer-store redis). Sign-in: a plain form whose password is checked with
// PBKDF2-HMAC-SHA512 with the iterations of IdentityService's hasher (PBKDF2_ITERATIONS, which bench/run.sh
// takes from the hasher measurement; 210,000 by default).
// Usage: PORT=5090 [PBKDF2_ITERATIONS=210000] [PEER_REDIS=redis://127.0.0.1:6390] node server.js
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import Provider from 'oidc-provider';
import BenchMemoryAdapter from './adapter.js';

const port = Number(process.env.PORT || 5090);
const issuer = `http://127.0.0.1:${port}`;
const clientSecret = process.env.CLIENT_SECRET || 'bench-secret-0123456789abcdef';
const password = process.env.USER_PASSWORD || 'correct horse battery staple';
const pbkdf2 = promisify(crypto.pbkdf2);
const iterations = Number(process.env.PBKDF2_ITERATIONS || 210_000);

async function storage() {
  return process.env.PEER_REDIS ? (await import('./redis-adapter.js')).default : BenchMemoryAdapter;
}

function jwk(type, options, alg, kid) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid };
}

// Users: user0..user255@bench.test, one stored PBKDF2 hash (salted) for the shared password.
const salt = crypto.randomBytes(16);
const storedHash = crypto.pbkdf2Sync(password, salt, iterations, 32, 'sha512');

const resources = {
  'urn:bench:es256': { scope: 'api', accessTokenFormat: 'jwt', accessTokenTTL: 86400, jwt: { sign: { alg: 'ES256' } } },
  'urn:bench:rs256': { scope: 'api', accessTokenFormat: 'jwt', accessTokenTTL: 86400, jwt: { sign: { alg: 'RS256' } } },
};
const resourceOf = (client) => (client.clientId.endsWith('-rs') ? 'urn:bench:rs256' : 'urn:bench:es256');

const clients = [];
for (const suffix of ['', '-rs']) {
  clients.push({
    client_id: `cc${suffix}`, client_secret: clientSecret, grant_types: ['client_credentials'], response_types: [],
    redirect_uris: [], token_endpoint_auth_method: 'client_secret_post',
  });
  clients.push({
    client_id: `web${suffix}`, grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'RS256',
  });
}

const provider = new Provider(issuer, {
  // PEER_ADAPTER=development: oidc-provider's own development adapter instead (adapter.js says why not by default).
  ...(process.env.PEER_ADAPTER === 'development' ? {} : { adapter: await storage() }),
  clients,
  jwks: { keys: [jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es'), jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs')] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  claims: { openid: ['sub'], email: ['email'] },
  scopes: ['openid', 'offline_access', 'api'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: { AccessToken: 86400, ClientCredentials: 86400, IdToken: 3600, RefreshToken: 365 * 86400 - 60, AuthorizationCode: 600, Session: 86400, Interaction: 3600, Grant: 365 * 86400 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client) => resourceOf(client),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (!resources[indicator]) throw new Error('unknown resource');
        return resources[indicator];
      },
    },
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// The interaction pages: GET shows the sign-in form, POST checks the password and finishes the
// interaction with a grant of the requested scopes (first-party: no consent page), as ours does.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>Sign in</title><form method="post" action="/interaction/${escape(details.uid)}">`
      + '<input name="email" type="email" autocomplete="username"><input name="password" type="password" autocomplete="current-password">'
      + '<button>Sign in</button></form>';
    return undefined;
  }
  if (ctx.method !== 'POST') return next();
  const form = await readForm(ctx.req);
  const hash = await pbkdf2(form.get('password') || '', salt, iterations, 32, 'sha512');
  const email = form.get('email') || '';
  if (!/^user\d+@bench\.test$/.test(email) || !crypto.timingSafeEqual(hash, storedHash)) {
    ctx.status = 400;
    ctx.body = 'Email and/or password invalid.';
    return undefined;
  }
  const { params } = details;
  const grant = new provider.Grant({ accountId: email, clientId: params.client_id });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(resourceOf({ clientId: params.client_id }), 'api');
  const grantId = await grant.save();
  await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: email }, consent: { grantId } }, { mergeWithLastSubmission: false });
  return undefined;
});

provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
