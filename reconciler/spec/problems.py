"""Problems found while loading or validating workflow files, and the exception carrying them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding, always pointing at a file and a 1-based line so a user can jump to it."""

    filename: str
    line: int
    field: str
    message: str
    severity: str = "error"  # or "warning"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        text = f"{self.filename}:{self.line}: {self.field}: {self.message}"
        return f"warning: {text}" if self.severity == "warning" else text


class SpecError(Exception):
    """Raised when a file cannot be loaded; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
