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

Tests inject faults through a third middleware: `POST /lambda-ocr/faults`
with `{"target": "UpdateItem", "contains": ["table-name", "result_key"],
"times": 3}` makes the next 3 DynamoDB requests of that action whose body
holds every one of those strings fail as DynamoDB fails (500
InternalServerError). The answer names the fault: `GET` and `DELETE` on
`/lambda-ocr/faults/{id}` tell how many requests it failed, and `DELETE`
disarms it. Only requests that match are touched, so tests
sharing one server stay apart.

A fourth middleware counts the requests the services receive, by service and
action, with their bodies' bytes: `GET /lambda-ocr/requests` answers
`{"dynamodb": {"PutItem": {"count": 2, "bytes": 1400}}, "s3": {"PUT": ...}}`
and `DELETE` starts the count again. The cost model of `make bench` reads it.

With `--state FILE` the server keeps its state across a restart, as the
services it stands in for do: on SIGTERM or SIGINT it writes every service's
data to FILE, and on start it reads FILE back if it exists.

Usage: python moto_launcher.py [-H HOST] [-p PORT] [--state FILE]
"""

import argparse
import base64
import hashlib
import io
import copyreg
import json
import os
import pickle
import re
import signal
import sys
import threading
import urllib.parse

from moto.backends import get_backend
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


FAULTS_PATH = "/lambda-ocr/faults"
INTERNAL_ERROR = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "Internal server error (injected)",
    }
).encode()


class InjectedFaults:
    """WSGI middleware: DynamoDB requests that match an armed fault answer
    500 InternalServerError until the fault has failed `times` of them."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.faults = []
        self.next_id = 1

    def control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        fault_id = environ.get("PATH_INFO")[len(FAULTS_PATH) :].strip("/")
        with self.lock:
            if method == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                fault = json.loads(environ["wsgi.input"].read(length) or b"{}")
                fault.setdefault("contains", [])
                fault["failed"] = 0
                fault["id"] = str(self.next_id)
                self.next_id += 1
                self.faults.append(fault)
                answer = fault
            else:
                found = [fault for fault in self.faults if fault["id"] == fault_id]
                if method == "DELETE":
                    self.faults = [fault for fault in self.faults if fault["id"] != fault_id]
                answer = found[0] if found else None
        if answer is None:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"message":"no such fault"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    def armed_for(self, environ, body):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self.lock:
            for fault in self.faults:
                if (
                    target == DYNAMODB_TARGET + fault["target"]
                    and fault["failed"] < fault["times"]
                    and all(part.encode() in body for part in fault["contains"])
                ):
                    fault["failed"] += 1
                    return True
        return False

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(FAULTS_PATH):
            return self.control(environ, start_response)
        if not self.faults or not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        if self.armed_for(environ, body):
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.0")],
            )
            return [INTERNAL_ERROR]
        return self.app(environ, start_response)


REQUESTS_PATH = "/lambda-ocr/requests"
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,&]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")


class RequestTally:
    """WSGI middleware: counts each request by service and action (the
    X-Amz-Target's operation, a query protocol's Action, or S3's method)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.counts = {}

    @staticmethod
    def service_and_action(environ, body):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        signed = environ.get("HTTP_AUTHORIZATION", "") + "&" + urllib.parse.unquote(
            environ.get("QUERY_STRING", "")
        )
        scope = CREDENTIAL_SCOPE.search(signed)
        service = scope.group(1) if scope else "unsigned"
        if target:
            return service, target.rsplit(".", 1)[-1]
        if service == "s3":
            return service, environ.get("REQUEST_METHOD", "")
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
        if not action:
            action = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        return service, (action or [environ.get("REQUEST_METHOD", "")])[0]

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(REQUESTS_PATH):
            with self.lock:
                answer = json.dumps(self.counts).encode()
                if environ.get("REQUEST_METHOD") == "DELETE":
                    self.counts = {}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [answer]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        peek = b""
        if length and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            peek = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(peek)
        service, action = self.service_and_action(environ, peek)
        with self.lock:
            entry = self.counts.setdefault(service, {}).setdefault(action, {"count": 0, "bytes": 0})
            entry["count"] += 1
            entry["bytes"] += length
        return self.app(environ, start_response)


# The services the pipeline uses: their data is what a restart keeps.
KEPT_SERVICES = ("dynamodb", "s3", "sqs", "sns", "secretsmanager")


class StatePickler(pickle.Pickler):
    """Locks are state of the running process, not data: each is written as a
    fresh one (moto's SQS queues hold one)."""

    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    dispatch_table[type(threading.RLock())] = lambda _: (threading.RLock, ())


def save_state(path, attempts=5):
    """Writes every kept service's backends to `path` (atomically). A request
    still running (a long poll) may change a dict under the pickler: try again."""
    state = {
        service: {
            account: dict(regions.items()) for account, regions in get_backend(service).items()
        }
        for service in KEPT_SERVICES
    }
    for attempt in range(attempts):
        try:
            buffer = io.BytesIO()
            StatePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
            break
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    partial = path + ".partial"
    with open(partial, "wb") as file:
        file.write(buffer.getvalue())
    os.replace(partial, path)


def load_state(path):
    """Puts the backends `save_state` wrote back in place."""
    with open(path, "rb") as file:
        state = pickle.load(file)
    for service, accounts in state.items():
        live = get_backend(service)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                dict.__setitem__(live[account], region, backend)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("-p", "--port", type=int, default=5000, help="port to bind")
    parser.add_argument("--state", help="keep the state in this file across restarts")
    args = parser.parse_args(argv)
    # moto builds some addresses from its own port, as its moto_server does.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    if args.state and os.path.exists(args.state):
        load_state(args.state)

    def stop(*_):
        if args.state:
            save_state(args.state)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(
        args.host,
        args.port,
        RequestTally(InjectedFaults(CheckedDigests(SerialisedWrites(app)))),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
