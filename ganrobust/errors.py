"""The one error type for bad input: what the user gave ganrobust cannot be used.

:class:`InputError` says that an option, a file, a model or data the user passed is wrong, and
its message says how to fix it; the CLI prints it as one ``error:`` line with exit status 2.
Any other exception reaching the CLI is a bug in ganrobust (or in a library under it): the CLI
shows its traceback and asks for a report with ``ganrobust env``. It subclasses ``ValueError``,
so code that catches ``ValueError`` keeps working.

A message names what to change with :func:`param`, by the library's parameter name: a library
user reads ``pass real=``, the command line ``pass --data`` (:meth:`InputError.cli_message`,
the flag from :data:`FLAGS`, else ``--`` and the name with dashes). The parameters a message
names are on the error (``err.params``).
"""

from __future__ import annotations

import re

_MARK = "\x1f"
_PARAM = re.compile(f"{_MARK}([A-Za-z_][A-Za-z0-9_]*){_MARK}")
_API = re.compile(f"{_MARK}([A-Za-z_][A-Za-z0-9_]*){_MARK}(?: (?=[A-Z0-9'\"\\[{{]|pkg\\.))?")

#: library parameters whose command-line flag is not ``--`` and the name with dashes
FLAGS: dict[str, str] = {
    "real": "--data",                    # the real samples of a library call; the CLI loads them from --data
    "robust_d_steps": "--robust-d",
    "snapshot_selection": "--snapshots",
    "trust": "--trust-checkpoint",
    "verify": "--no-verify",
}
#: how a library call sets a switch the CLI turns on with its flag alone
SWITCHES: dict[str, str] = {"trust": "trust=True", "verify": "verify=False", "fresh_optimizer": "fresh_optimizer=True",
                            "d_augment": "d_augment=True"}


def param(name: str) -> str:
    """A parameter named in an error message, rendered for whoever reads it: ``name=`` in the
    library, its flag on the command line."""
    return f"{_MARK}{name}{_MARK}"


def flag(name: str) -> str:
    """The command-line flag of the library parameter ``name``."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def render(message: str, *, cli: bool) -> str:
    """``message`` with every :func:`param` written as its flag or as a parameter: ``name=`` (a value
    the message shows after it, ``--g-optimizer NAME``, joins it: ``g_optimizer=NAME``)."""
    if cli:
        return _PARAM.sub(lambda m: flag(m.group(1)), message)
    return _API.sub(lambda m: SWITCHES.get(m.group(1), f"{m.group(1)}="), message)


class InputError(ValueError):
    """Bad input from the user (an option, a file, a model or data that does not fit): the message
    says what was wrong and what to do, naming parameters with :func:`param`."""

    @property
    def params(self) -> tuple[str, ...]:
        """The library parameters the message names, in order."""
        return tuple(_PARAM.findall(self._raw()))

    def _raw(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return render(self._raw(), cli=False)

    def cli_message(self) -> str:
        """The message as the command line says it: parameters written as their flags."""
        return render(self._raw(), cli=True)


def marked(err: BaseException) -> str:
    """The message of ``err`` to build another one from: an :class:`InputError`'s with its parameters
    still marked, so the outer error renders them for its reader too."""
    return err._raw() if isinstance(err, InputError) else str(err)


def cli_text(err: BaseException) -> str:
    """What the CLI prints for ``err``: an :class:`InputError` with flags for parameters."""
    return err.cli_message() if isinstance(err, InputError) else str(err)
