"""The store's errors: one base class and the refusals callers tell apart."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot do what was asked."""


class NotFound(StoreError):
    """No such key, request or presignature."""


class IdempotencyConflict(StoreError):
    """The idempotency key is already bound to a request (`request_id`) with a different body."""

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class InvalidTransition(StoreError):
    """A request or presignature state change the lifecycle does not allow."""


class DuplicateApproval(StoreError):
    """This officer already approved this request (with a different approval)."""
