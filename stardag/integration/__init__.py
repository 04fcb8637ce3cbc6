"""Integrations with orchestrators that users already run: Prefect and Modal.

Each lives in its own subpackage and needs its own extra (`stardag[prefect]`,
`stardag[modal]`). Importing this package imports neither: `import stardag`
never loads an orchestrator, and importing an integration without its extra
raises `OptionalDependencyError` naming the extra to install.
"""
