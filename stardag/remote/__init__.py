"""Sharing a store: remote configuration, push, pull and read-through.

Remotes move blobs first and records last, verify every digest they download, and are
idempotent. The registry never imports this part; this part records its fetches there.
"""
