"""The one exception type of the expression machinery."""

from __future__ import annotations


def one_line(text: str, limit: int = 200) -> str:
    """Render user text for an error message: a single line, bounded in length."""
    flat = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if len(flat) > limit:
        flat = flat[: limit - 3] + "..."
    return flat


class ExpressionError(Exception):
    """A template, condition, depends or expression that cannot be parsed or evaluated.

    The message is one line and says what went wrong and in which text, so the engine can put
    it straight into a node's status message.
    """

    def __init__(self, message: str, *, text: str | None = None) -> None:
        # Newlines would break the one-line status messages the engine writes.
        message = message.replace("\n", " ").replace("\r", " ")
        self.text = text
        super().__init__(message)
