"""User-facing errors: the CLI prints these without a traceback."""


class RepbenchError(Exception):
    """Bad input or a missing resource, with a message that says what to do."""


class InputError(RepbenchError):
    """A malformed input file; the message names the file, the line and what was expected."""

    def __init__(self, path: object, line: int | None, expected: str, byte: int | None = None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        if line is not None and byte is not None:
            where += f":{byte}"
        super().__init__(f"{where}: {expected}")
        self.path, self.line, self.byte, self.expected = str(path), line, byte, expected
