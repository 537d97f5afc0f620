"""Who is asking: users and roles, accounts and sessions, API keys, the company directory (LDAP),
OpenID Connect, the directory-group map and the local operator's token.
Rule: may use audit/ and platform/; never the service or a door."""
