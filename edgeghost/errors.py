"""The one exception type for user-facing errors: the CLI prints its message on one line and exits non-zero."""


class EdgeGhostError(Exception):
    """A problem with the user's input or environment (bad name, missing file, corrupt checkpoint, ...)."""
