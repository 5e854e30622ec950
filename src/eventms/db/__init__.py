"""PostgreSQL access: the ORM base (`base`), engines and session factories
(`engine`), effects run after a commit (`effects`), and the two query helpers every
feature uses (`queries`: load one or 404, page a list)."""
