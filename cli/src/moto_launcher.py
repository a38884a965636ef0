"""moto's server with DynamoDB's atomicity: one request on the table at a time.

moto checks a ConditionExpression and then writes without a lock, so two
concurrent conditional writes to one item can both pass, and a read can see an
item half updated. DynamoDB allows neither, and the pipeline's leases, job
transitions, rate-limit counters and dedup rely on that. This launcher runs
moto's own WSGI application behind a middleware that serialises every DynamoDB
request (writes and reads alike), and likewise S3's conditional PUTs (a
presigned upload's `If-None-Match: *` must let exactly one writer win), while
every other request, SQS's long-polling receives among them, keeps running
concurrently on its own thread.

S3 refuses a PUT whose body does not match the `x-amz-checksum-sha256` it
declares (400 BadDigest); moto stores it. A presigned upload signs the
declared SHA-256 into that header, and the pipeline relies on S3 refusing
other bytes, so a second middleware checks it as S3 does.

Usage: python moto_launcher.py [-H HOST] [-p PORT]
"""

import argparse
import base64
import hashlib
import io
import os
import signal
import sys
import threading

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

DYNAMODB_TARGET = "DynamoDB_20120810."


class SerialisedWrites:
    """WSGI middleware: DynamoDB requests, and S3's conditional PUTs, run one at
    a time (each kind behind its own lock), body included."""

    def __init__(self, app):
        self.app = app
        self.dynamodb = threading.Lock()
        self.s3_conditional = threading.Lock()

    def lock_for(self, environ):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return self.dynamodb
        if environ.get("REQUEST_METHOD") == "PUT" and (
            "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        ):
            return self.s3_conditional
        return None

    def __call__(self, environ, start_response):
        lock = self.lock_for(environ)
        if lock is None:
            return self.app(environ, start_response)
        with lock:
            result = self.app(environ, start_response)
            try:
                # The body is produced while the lock is held: the answer is the state it saw.
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


BAD_DIGEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>'
    b"<Message>The SHA256 you specified did not match the calculated checksum.</Message></Error>"
)


class CheckedDigests:
    """WSGI middleware: a PUT with a plain body and an `x-amz-checksum-sha256`
    header is refused with S3's 400 BadDigest when the body does not match."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        declared = environ.get("HTTP_X_AMZ_CHECKSUM_SHA256")
        chunked = "aws-chunked" in environ.get("HTTP_CONTENT_ENCODING", "") or environ.get(
            "HTTP_X_AMZ_CONTENT_SHA256", ""
        ).startswith("STREAMING")
        if environ.get("REQUEST_METHOD") != "PUT" or not declared or chunked:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if base64.b64encode(hashlib.sha256(body).digest()).decode() != declared:
            start_response("400 Bad Request", [("Content-Type", "application/xml")])
            return [BAD_DIGEST]
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, default=5000, help="port to bind")
    args = parser.parse_args(argv)
    # moto builds some addresses from its own port, as its moto_server does.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(
        args.host,
        args.port,
        CheckedDigests(SerialisedWrites(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
