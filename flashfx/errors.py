"""What can go wrong talking to FlashFX, as classes a caller can act on (docs/flashfx.md §1.4, §2.6).

- FlashFXUnavailable: try again later (network, 5xx, HTML instead of JSON, 429 with its
  Retry-After, TOO_MANY_REQUESTS). Safe to retry for queries; for a mutation only when the
  request cannot have reached FlashFX (it failed to connect).
- FlashFXRejected: FlashFX said no (success: false with a code, or BAD_USER_INPUT naming a
  field). Retrying the same request gets the same answer.
- FlashFXAuthError: our credentials are refused, even after a fresh login.
- OutcomeUnknown: a mutation that may have reached FlashFX and taken effect, but whose answer
  never arrived (read timeout, connection dropped after sending). Never retried blindly: the
  caller looks the entity up by externalId, or repeats it with the same idempotencyKey.
"""

from __future__ import annotations


class FlashFXError(Exception):
    """Base of every error the client raises.

    `code` is a short machine-readable cause for logs and callers (e.g. "HTTP_500",
    "READ_TIMEOUT", "TOO_MANY_REQUESTS", "INSUFFICIENT_FUNDS"); empty when there is none.
    """

    code: str = ""

    def __init__(self, message: str, *, operation: str = "", code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.code = code


class FlashFXUnavailable(FlashFXError):
    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        retry_after: float | None = None,
        status_code: int | None = None,
        code: str = "",
    ) -> None:
        super().__init__(message, operation=operation, code=code)
        self.retry_after = retry_after
        self.status_code = status_code


class FlashFXRejected(FlashFXError):
    def __init__(
        self, message: str, *, operation: str = "", code: str = "", field: str | None = None
    ) -> None:
        super().__init__(message, operation=operation, code=code)
        self.field = field


class FlashFXAuthError(FlashFXError):
    pass


class OutcomeUnknown(FlashFXError):
    pass
