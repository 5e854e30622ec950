"""The Redis response cache.

- `client`: the Redis client of a process, and how an outage is noticed and logged;
- `engine`: the mechanics of a cache that is never stale (versions, races, outages);
- `keys`: the key scheme, the cached views by name, and the tags each view shows;
- `invalidation`: what each write makes stale, bumped after its commit;
- `fast_path`: by-id hits answered before FastAPI routes the request.
"""
