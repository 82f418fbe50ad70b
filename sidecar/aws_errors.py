"""AWS errors in the run's terms: which exceptions are AWS's, what the retry policy needs to know about one,
and a plain-English, value-free explanation of an error code for one target."""

from __future__ import annotations

from typing import Final

from sidecar.outcomes import Failure
from sidecar.references import ObjectTarget, ParameterPathTarget, ParameterTarget, Target
from sidecar.retry_policy import ACCESS_DENIED_CODES, NOT_FOUND_CODES, ErrorClass, classify_code

MAX_AWS_MESSAGE_CHARS: Final = 200
PERMISSION: Final = {
    "GetSecretValue": "secretsmanager:GetSecretValue",
    "BatchGetSecretValue": "secretsmanager:BatchGetSecretValue",
    "GetParameters": "ssm:GetParameters",
    "GetObject": "s3:GetObject",
    "DescribeSecret": "secretsmanager:DescribeSecret",
    "HeadObject": "s3:GetObject",
    "GetParametersByPath": "ssm:GetParametersByPath",
}
PINNED_OBJECT_PERMISSION: Final = "s3:GetObjectVersion"  # GetObject with a versionId (S3 API reference)


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError  # not a BotoCoreError: an answer botocore cannot read

    return (BotoCoreError, ClientError, ResponseParserError)


AWS_ERRORS: Final = _aws_errors()  # this module is only imported when a run needs botocore


def classify(exc: BaseException) -> ErrorClass:
    """What the retry policy needs to know about a failed call: its AWS error code (or exception class) and
    whether a retry may help. Network and credential-endpoint failures are transient; any other exception
    that reaches here is not."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        return classify_code(code, exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    credentials = isinstance(exc, bce.CredentialRetrievalError)
    # An answer that does not parse (a proxy's HTML page, a cut-off body): botocore's own message says a
    # retry may succeed.
    transient = credentials or isinstance(exc, bce.HTTPClientError | bce.ConnectionError | _parser_error())
    return ErrorClass(type(exc).__name__, transient, credentials=credentials)


def network_detail(exc: BaseException, service: str, region: str) -> str:
    """For a call that failed on the network: the endpoint URL, and for one never reached, what gives a task a
    way there. Empty for any other error."""
    from botocore import exceptions as bce

    url = exc.kwargs.get("endpoint_url") if isinstance(exc, bce.BotoCoreError) else None
    if not url:
        return ""
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectTimeoutError):
        return (
            f": could not connect to {url}; the task needs a route to it (a NAT gateway or a public IP), a VPC "
            f"endpoint (com.amazonaws.{region}.{service}), or AWS_ENDPOINT_URL set to an endpoint it can reach"
        )
    return f" (endpoint {url})"


def aws_message(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    if isinstance(exc, _parser_error()):
        # Its text quotes the whole answer, which may hold a value (or an assumed role's secret key).
        return "the answer could not be parsed"
    return str(exc)


def _parser_error() -> type[Exception]:
    from botocore.parsers import ResponseParserError

    return ResponseParserError


def failure_for(code: str, message: str, target: Target, operation: str) -> Failure:
    """A plain-English, value-free explanation of an AWS error code for one target."""
    # One line: a body botocore could not parse (an XML or HTML error page) arrives as the message.
    message = " ".join(message.split())
    said = f" (AWS: {message[:MAX_AWS_MESSAGE_CHARS]})" if message else ""
    what = target.describe()
    who = f"the role {target.role_arn}" if target.role_arn else "the task role"
    if code in NOT_FOUND_CODES:
        return Failure(code, f"{what} was not found ({code}){said}", not_found=True)
    if code in ACCESS_DENIED_CODES:
        kms = " or kms:Decrypt on its KMS key" if "kms" in message.lower() else ""
        permission = PERMISSION[operation]
        if operation == "GetObject" and isinstance(target, ObjectTarget) and target.version_id:
            permission = PINNED_OBJECT_PERMISSION
        if isinstance(target, ParameterTarget) and target.is_secret_reference:
            permission += " (and secretsmanager:GetSecretValue on the secret it references)"
        if isinstance(target, ParameterPathTarget):
            # Authorized against the path itself, not against the parameters it returns (botocore's model).
            what += f" (the resource is the path: arn:aws:ssm:{target.region}:ACCOUNT:parameter{target.path})"
        return Failure(code, f"access denied ({code}): {who} lacks {permission}{kms} on {what}{said}")
    if code in ("DecryptionFailure", "KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException"):
        return Failure(code, f"KMS could not decrypt {what} ({code}): {who} needs kms:Decrypt on its key{said}")
    return Failure(code, f"{operation} failed for {what} with {code}{said}")
