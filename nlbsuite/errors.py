"""The one exception type for bad user input.

The CLI turns a :class:`UserError` into a single line on stderr and exit code 2;
anything else is a bug and keeps its traceback.

Errors about a function argument name the Python parameter
(``phase='train': expected one of val, test``); the CLI shows the same error with the flag
that sets that parameter (``--phase 'train': expected one of val, test``).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any


class UserError(Exception):
    """Bad input from the user: a file, key, argument or value that is not what was expected.

    The message must name the offending file/key/argument and say what was expected. For a
    bad argument pass ``param`` (the Python parameter's name) and its ``value`` (None: not
    shown); ``message`` then says only what was expected, and ``str(error)`` reads
    ``param=value: message``.
    """

    def __init__(self, message: str, param: str | None = None, value: Any = None) -> None:
        self.message, self.param, self.value = message, param, value
        super().__init__(self._named(f"{param}=", repr(value)) if param else message)

    def for_flag(self, flag: str) -> str:
        """The message naming the CLI ``flag`` instead of the parameter:
        ``--phase 'train': expected ...``."""
        shown = str(self.value) if isinstance(self.value, PurePath) else repr(self.value)
        return self._named(f"{flag} ", shown)

    def _named(self, name: str, shown: str) -> str:
        if self.value is None:
            return f"{name.rstrip('= ')}: {self.message}"
        return f"{name}{shown}: {self.message}"


def require(condition: bool, message: str, param: str | None = None, value: Any = None) -> None:
    """Raise :class:`UserError` (``message``, ``param``, ``value``) unless ``condition`` holds."""
    if not condition:
        raise UserError(message, param, value)
