"""The only place with `@kopf.*` decorators. Importing `llmsim_operator.handlers.all` registers every
handler in kopf's default registry."""
