"""Who is asking, and what they may do (PRODUCT.md, "Access").

- `scopes`: the scopes of API keys, and what each allows;
- `tokens`: making and hashing key tokens;
- `models`, `service`, `router`: API keys, stored as hashes, managed over the API
  and the CLI;
- `caller`: resolving a request's caller (anonymous, a key, or everyone in
  `AUTH_MODE=open`) without a database round trip per request;
- `deps`: what routes declare (`requires(scope)`, `public`) and receive (`CallerDep`).
"""
