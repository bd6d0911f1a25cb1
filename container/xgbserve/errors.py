"""The one exception type a request can fail with: an HTTP status and a message meant for the client."""

from __future__ import annotations

from http import HTTPStatus


class ServingError(Exception):
    """A request the server refuses; ``message`` is shown to the client as is, so never put a trace in it."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ServingError:
    return ServingError(HTTPStatus.BAD_REQUEST, message)
