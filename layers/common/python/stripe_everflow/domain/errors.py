"""Named failures of the bridge.

Every error carries a stable ``reason`` (snake_case) used in HTTP answers, logs and
metric dimensions, so nothing downstream ever matches on message text.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every failure the bridge names."""

    reason = "bridge_error"


class ConfigurationError(BridgeError):
    """A required setting is missing or malformed; raised at start, never retried."""

    reason = "configuration_error"


class SecretUnavailableError(BridgeError):
    """The bridge secret could not be read or parsed; retried by the caller's platform."""

    reason = "secret_unavailable"


class WebhookRejectedError(BridgeError):
    """A webhook request that is refused: nothing is queued, Stripe gets a 4xx."""

    reason = "rejected"


class PayloadTooLargeError(WebhookRejectedError):
    reason = "payload_too_large"


class UnknownAccountError(WebhookRejectedError):
    reason = "unknown_account"


class RouteNotFoundError(WebhookRejectedError):
    reason = "route_not_found"


class SignatureHeaderMissingError(WebhookRejectedError):
    reason = "signature_header_missing"


class SignatureHeaderMalformedError(WebhookRejectedError):
    reason = "signature_header_malformed"


class SignatureSchemeMissingError(WebhookRejectedError):
    reason = "signature_scheme_missing"


class SignatureMismatchError(WebhookRejectedError):
    reason = "signature_mismatch"


class TimestampStaleError(WebhookRejectedError):
    reason = "timestamp_stale"


class TimestampFutureError(WebhookRejectedError):
    reason = "timestamp_in_future"


class BodyEncodingError(WebhookRejectedError):
    reason = "body_encoding_invalid"


class BodyNotJsonError(WebhookRejectedError):
    reason = "body_not_json"


class NotStripeEventError(WebhookRejectedError):
    reason = "not_a_stripe_event"


class StorageUnavailableError(BridgeError):
    """A table could not be read or written; the caller answers 503 (a resend is safe)."""

    reason = "storage_unavailable"


class QueueUnavailableError(BridgeError):
    """The queue did not take the message; the webhook answers 503 so Stripe retries."""

    reason = "queue_unavailable"


class ClickRequestError(BridgeError):
    """A click request to refuse; nothing is stored."""

    reason = "invalid_request"


class UnauthorizedError(ClickRequestError):
    reason = "unauthorized"


class ClickFieldError(ClickRequestError):
    """One field of a click is wrong; ``field`` names it (``clicks[3].email`` in a batch)."""

    reason = "invalid_field"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem

    def at(self, index: int) -> ClickFieldError:
        return ClickFieldError(f"clicks[{index}].{self.field}", self.problem)


class StripeApiError(BridgeError):
    """Reading from Stripe's API failed; the record is retried by SQS."""

    reason = "stripe_api_unavailable"


class StripeRefusedError(StripeApiError):
    """Stripe answered for good: the key may not read the object (401/403) or the
    object does not exist (404). Retrying changes nothing; callers that can do
    without the answer catch it."""

    reason = "stripe_api_refused"


class JobError(BridgeError):
    """A postback job that cannot be sent now; the record fails and SQS retries it."""

    reason = "job_error"


class MalformedJobError(JobError):
    reason = "malformed_job"


class JobBusyError(JobError):
    """Another worker holds this job's lease; the redelivery will find it final or free."""

    reason = "job_busy"


class EverflowRetryableError(JobError):
    """Everflow answered 429/5xx or did not answer; the record is delivered again later."""

    reason = "everflow_retryable"


class EverflowCircuitOpenError(JobError):
    """Everflow has been failing (the shared circuit breaker is open): the record is held
    without calling it and delivered again later."""

    reason = "everflow_circuit_open"


class UnsupportedJobError(JobError):
    reason = "unsupported_job"


class ConversionNotPostedError(JobError):
    """A refund or dispute whose conversion is not posted yet: retried until it is,
    then it waits in PostbackDLQ — never dropped."""

    reason = "conversion_not_posted"


class EverflowApiError(BridgeError):
    reason = "everflow_api_error"


class EverflowUnavailableError(EverflowApiError):
    """The Network API did not answer, or answered 429 or 5xx (retried; it counts
    against Everflow in the circuit breaker, unlike a refusal or an exhausted budget)."""

    reason = "everflow_api_unavailable"
