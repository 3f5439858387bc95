"""The one error type a user sees as a single line (no traceback): bad recipes, bad data, bad machines."""


class UserError(Exception):
    """A problem the user can fix; the CLI prints `error: <message>` and exits with status 2."""
