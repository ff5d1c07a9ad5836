"""newsrag: cross-cutting pieces shared by the library packages (settings, errors, CLI, local Weaviate)."""

__version__ = "0.1.0"
