"""The one exception of examples/finetune.py and its modules: bad input, said in one line."""


class UsageError(Exception):
    """Bad input: finetune.main() prints it as one line, ``error: ...``, and exits with status 1."""
