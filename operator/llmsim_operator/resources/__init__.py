"""Pure builders: models in, manifest dicts out. No I/O here."""
