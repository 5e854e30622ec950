"""Web pages served at the root by the same app, calling the same services as the API."""
