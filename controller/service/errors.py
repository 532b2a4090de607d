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


def unavailable(message, retry_after, code="store_unavailable"):
    """503: the store did not answer within its retry budget.  Retry-After
    says when trying again makes sense; code `store_unavailable` means nothing
    was written, `outcome_unknown` that the change may have been made (read it
    back before sending it again)."""
    exc = ApiError(503, code, message)
    exc.headers = {"Retry-After": str(int(retry_after))}
    return exc
