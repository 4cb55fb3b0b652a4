"""The application's own exception, as the course's ``MyException`` / ``ImpôtsError``.

Error codes are those of the spec (Appendix A): 18 = the log file cannot be opened, 31/32/33 = invalid
``marié`` / ``enfants`` / ``salaire``, 27 = admin data cannot be read from the database, ...
"""


class ImpotsError(Exception):
    """An application error with a numeric code; ``str()`` is ``MyException[<code>, <message>]``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"MyException[{self.code}, {self.message}]"
