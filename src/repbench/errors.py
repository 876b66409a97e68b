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


def did_you_mean(word: str, choices: object) -> str:
    """' (did you mean 'x'?)' for the closest of `choices` to a mistyped `word`, or '' when none is close."""
    import difflib

    options = [str(c) for c in choices]  # type: ignore[attr-defined]
    lowered = {c.lower(): c for c in options}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=2, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?)"
