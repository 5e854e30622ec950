"""Signed webhooks (PRODUCT.md, "Webhooks").

- `catalog`: the event types;
- `models`, `schemas`, `service`, `router`: endpoints and their delivery log, over
  the API (scope `webhooks`);
- `emit`: what services call in their write's transaction (`emit(session, type,
  data)`): one delivery row and one job per matching endpoint, committed with it;
- `signing`: secrets and the Standard Webhooks signature;
- `addresses`: refusing URLs that resolve to private addresses (SSRF);
- `delivery`: one HTTP attempt; `jobs`: the procrastinate tasks (deliver, purge).
"""

from eventms.webhooks.emit import emit

__all__ = ["emit"]
