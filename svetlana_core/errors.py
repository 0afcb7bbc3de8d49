"""The one exception type for bad user input.

Every function of :mod:`svetlana_core` that reads a file or takes a user value raises
:class:`InputError` when the input is wrong, with a message that names the file or the argument
and says what was found. The CLI turns it into exit code 2 and one line on stderr; the app shows
it as an error box. Anything else that escapes is a bug.
"""


class InputError(ValueError):
    """Bad user input: the message names the file or value and what is wrong with it."""
