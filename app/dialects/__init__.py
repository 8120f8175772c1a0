"""Chat formats: built-in dialects and the Jinja-template ones (tokenizer's own, custom)."""
