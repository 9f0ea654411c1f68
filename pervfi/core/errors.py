"""User-facing errors.

Every problem a user can fix (a bad name, a missing file, unreadable input) raises a
subclass of `PerVFIError` with a one-line message naming the culprit. The command-line
tools print that line and exit with status 2; programming errors stay ordinary
exceptions with tracebacks.
"""


class PerVFIError(Exception):
    """Base class of errors caused by the user's input or environment."""


class UnknownNameError(PerVFIError, KeyError):
    """A model, method or option name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(PerVFIError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


class InputError(PerVFIError):
    """Input frames or videos that cannot be used (missing, unreadable, inconsistent)."""


class OutputError(PerVFIError):
    """An output location that cannot be written."""


class RegistryError(PerVFIError):
    """The model table (models.yaml) is inconsistent: a name or alias given twice."""


class NonFiniteOutputError(PerVFIError):
    """The model made NaN or infinite values: a precision's range exceeded, or broken weights."""
