"""Bytes at rest: blobs, zstd frames, action records, backends, directory outputs, serializers.

The store knows nothing of tasks or builds: it maps digests to verified bytes and task ids
to action records, and publishes a record only after its blob is complete (blob, then
record). Everything here is reached through its private modules; the public names are
re-exported by `stardag`.
"""
