"""Events: the table, schemas, rules and routes."""
