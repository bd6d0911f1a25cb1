"""One ComponentResource per concern of the stack; ``__main__.py`` composes them."""
