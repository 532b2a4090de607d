"""API errors: one exception type that the REST layer turns into JSON.

Everything that rejects a request raises ApiError *before* any state changes,
so "a rejected request changes nothing" holds by construction.
"""


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self):
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message, code="invalid"):
    return ApiError(400, code, message)


def not_found(message, code="not_found"):
    return ApiError(404, code, message)


def conflict(message, code="conflict"):
    return ApiError(409, code, message)
