"""Prompt templates as versioned data: YAML files under ``prompts/templates/<name>/<version>.yaml``."""

from prompts.template import (
    PromptError,
    PromptTemplate,
    RenderedPrompt,
    load_template,
    templates_dir,
)

__all__ = ["PromptError", "PromptTemplate", "RenderedPrompt", "load_template", "templates_dir"]
