"""Models built on rnnkit's recurrent layers."""

from .language_model import LanguageModel, LanguageModelConfig

__all__ = ["LanguageModel", "LanguageModelConfig"]
