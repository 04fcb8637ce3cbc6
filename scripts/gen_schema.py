"""Regenerate `schema/` (DDL, JSON Schemas, migrations) from the code.

Run after changing the registry models, a migration, the action record or the
task spec: `python scripts/gen_schema.py`. tests/registry/test_registry_schema.py fails
until the files match the code.
"""

from __future__ import annotations

import pathlib

from stardag.registry._schema import files

SCHEMA = pathlib.Path(__file__).resolve().parent.parent / "schema"


def main() -> None:
    """Write every generated file under `schema/`."""
    for relative, content in files().items():
        path = SCHEMA / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        print(f"wrote {path.relative_to(SCHEMA.parent)}")


if __name__ == "__main__":
    main()
