"""The one exception type the stages turn into a one-line message and a non-zero exit."""


class HiwarError(Exception):
    """A problem the user can fix (bad params, missing or malformed input); never a bug in hiwar."""
