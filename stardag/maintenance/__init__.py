"""Keeping a store healthy and answering questions about it: gc mark and sweep, verify,
repair, audit, rebuild, resolving references, describing tasks and settings.

Nothing here runs during a build except through the public build API; gc never deletes
what is reachable from a root or was written within the grace period.
"""
