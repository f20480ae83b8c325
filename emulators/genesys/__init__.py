"""A Genesys Cloud Platform API v2 emulator: a real HTTP server, so the same connector code
runs against a real org by configuration alone. `python -m emulators.genesys serve --help`.

Modules: app (pipeline, control API), auth (OAuth, rate limit), errors (ErrorBody), faults,
store (SQLite), seed, users, conversations, recordings, externalcontacts, notifications,
simulator (simulated calls and their signed conversation-ended webhook).
"""
