"""Safe retries (PRODUCT.md, "Safe retries: Idempotency-Key").

- `middleware`: the layer that owns an idempotent write's transaction: it locks the
  key, replays a stored answer or runs the request, and stores its answer in the
  same transaction as the write;
- `held`: how the request's session dependency finds that transaction;
- `store`: the SQL (advisory lock, the stored answer, the purge);
- `openapi`: the header and its answers on every write operation;
- `jobs`: the periodic purge of expired keys.
"""
