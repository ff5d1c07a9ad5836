"""Prompt templates as versioned data: YAML files under ``prompts/templates/<name>/<version>.yaml``."""

from newsrag.core.templates import (
    PromptError,
    PromptTemplate,
    RenderedPrompt,
    load_template,
    templates_dir,
)

__all__ = ["PromptError", "PromptTemplate", "RenderedPrompt", "load_template", "templates_dir"]
