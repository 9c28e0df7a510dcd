"""The CLI's one error type. Anything raised as ``CliError`` is shown as one line on stderr
(``Error: <message>``) and ends the command with ``exit_code`` (1 unless said otherwise)."""


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
