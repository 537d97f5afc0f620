// A real OpenID provider for kura's tests: panva/oidc-provider (OpenID certified) on 127.0.0.1.
// Usage: node provider.mjs CONFIG.json, where CONFIG holds {issuer, port, clients, accounts}.
// accounts: {id: {claims...}}; a client with "id_token_ttl" gets ID tokens that short-lived.
// Sign-in goes through the provider's own login and consent pages (devInteractions).
import crypto from 'node:crypto';
import fs from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
signingKey.kid = crypto.randomUUID();
signingKey.use = 'sig';
signingKey.alg = 'RS256';

const ttlFor = Object.fromEntries(
  config.clients.filter((c) => c.id_token_ttl).map((c) => [c.client_id, c.id_token_ttl]),
);
const clients = config.clients.map(({ id_token_ttl: _ttl, ...client }) => client);

const provider = new Provider(config.issuer, {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: true } },
  pkce: { methods: ['S256'], required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups', 'roles'],
  },
  // Put the scopes' claims into the ID token, as Entra ID, Keycloak and Okta can be set to do.
  conformIdTokenClaims: false,
  ttl: {
    IdToken: (ctx, token, client) => ttlFor[client.clientId] ?? 3600,
  },
  async findAccount(ctx, id) {
    const account = config.accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...account };
      },
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(config.port, '127.0.0.1', () => console.log(`oidc-provider listening on ${config.issuer}`));
