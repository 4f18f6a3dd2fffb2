"""The error users see: one message that names the thing that is wrong and the fix.

Raise `UserError` (or a subclass) for bad input; the CLI prints its message alone, without a
traceback, and exits 2. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input or environment that the user can fix; the message says how."""
