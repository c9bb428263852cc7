"""The one error type for bad input: what the user gave ganrobust cannot be used.

:class:`InputError` says that an option, a file, a model or data the user passed is wrong, and
its message says how to fix it; the CLI prints it as one ``error:`` line with exit status 2.
Any other exception reaching the CLI is a bug in ganrobust (or in a library under it): the CLI
shows its traceback and asks for a report with ``ganrobust env``. It subclasses ``ValueError``,
so code that catches ``ValueError`` keeps working.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user (an option, a file, a model or data that does not fit): the message
    says what was wrong and what to do."""
