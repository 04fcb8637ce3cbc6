"""The task model: base classes, fields, the decorator, the class table and file targets.

A task is a Pydantic model whose canonical spec hashes to its id; it may read and write
the store (its output), never the build or the registry.
"""
