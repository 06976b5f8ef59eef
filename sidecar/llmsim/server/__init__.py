"""The aiohttp shell around the pure simulator: app factory, routes, request pipeline."""
