#!/usr/bin/env python3
"""Fake-AWS test harness for nuaws: a local moto server plus boto3 helpers.

What it is for
    nuaws's Rust integration tests and the README demo need an S3/EC2 endpoint
    on loopback with known contents. This script starts one (moto), fills it
    with many objects/instances, and lists what is there through boto3 so the
    tests can compare nuaws's output with an independent reference client. It
    can also log every request the server handles, so tests can assert how
    many API calls nuaws made (e.g. one ListObjectsV2 per 1000 keys).

What it is not for
    It never talks to real AWS: endpoints are expected to be loopback URLs and
    the credentials are dummies. It is not a benchmark of nuaws (moto is the
    bottleneck), not a general moto wrapper, and it only knows the handful of
    S3/EC2 operations the tests need. Run it with the venv python created by
    tests/support/setup-venv.sh (needs moto[server] and boto3).

Subcommands (each prints JSON on stdout; diagnostics go to stderr):
    serve           run moto on 127.0.0.1:<free port> until SIGTERM/SIGINT or
                    until stdin (when it is a pipe) reaches EOF
    seed-s3         create a bucket with N small objects over many prefixes
    list-s3         list a bucket with boto3 (reference listing)
    seed-ec2        launch N tagged instances, every 10th one stopped
    list-ec2        list all instances with boto3 (reference listing)
    seed-enrich     instances sharing few VPCs, subnets, security groups and AMIs
    seed-tags       instances, volumes, snapshots, groups, VPCs and buckets tagged
                    Application=web|billing
    seed-examples   the bucket and resources the examples of nuaws's commands use
    make-user       an IAM user with a key and no permissions (access-denied tests)
    count-requests  count lines of a `serve --log-requests` log
    reset           wipe all moto state (POST /moto-api/reset)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

DEFAULT_REGION = "us-east-1"

# Instance types cycled over by seed-ec2 (instance i gets TYPES[i % 3]) so
# that listings have something to group by.
INSTANCE_TYPES = ("t3.micro", "t3.small", "m5.large")


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _dummy_credentials() -> None:
    """Make boto3 work without any AWS configuration on the machine.

    Only fills in what is missing, so a caller may still pass its own dummy
    values (e.g. to match keys a test gives nuaws). The metadata service is
    disabled so that botocore never probes 169.254.169.254.
    """
    # A named profile that does not exist here would make boto3 fail before
    # any request; the harness never needs one.
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(var, None)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", DEFAULT_REGION)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


_session_lock = threading.Lock()
_session: Any = None


def _client(service: str, endpoint: str, region: str, pool: int = 10) -> Any:
    """A boto3 client for `service` pointed at the local endpoint.

    All clients come from one shared session, so botocore loads each service
    model once (a fresh session costs ~0.2 s per EC2 client). Creating clients
    from a session is not thread-safe, hence the lock; using them is.
    """
    global _session
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region,
        s3={"addressing_style": "path"},  # bucket in the path, not the host
        max_pool_connections=pool,
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
    )
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session(
                aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
                region_name=region,
            )
        return _session.client(service, endpoint_url=endpoint, config=config)


def _emit(value: Any) -> None:
    """Print one JSON document on stdout and flush (callers may be waiting)."""
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def _iso(dt: Any) -> str | None:
    """ISO 8601 with offset, e.g. 2026-11-24T00:55:01+00:00 (None passes)."""
    return dt.isoformat() if dt is not None else None


def _parallel(workers: int, items: Iterable[Any], fn: Callable[[Any], Any]) -> list:
    """Run fn over items in a thread pool; re-raises the first failure."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def _chunks(seq: list, size: int) -> list[list]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


# --------------------------------------------------------------------------
# serve: moto behind a request-logging WSGI middleware
# --------------------------------------------------------------------------


def _guess_s3_operation(method: str, path: str, query: dict, environ: dict) -> str:
    """Name the S3 REST operation of a path-style request (best effort).

    Only the operations nuaws and the harness use are distinguished; anything
    else is reported as "S3:<METHOD>" so it still shows up in counts.
    """
    # Virtual-host style (<bucket>.localhost) puts the bucket in the Host.
    host = environ.get("HTTP_HOST", "").split(":")[0]
    parts = [p for p in path.split("/") if p] if path else []
    if host.endswith(".localhost"):
        parts = [host[: -len(".localhost")]] + parts
    has = query.__contains__

    if not parts:  # service level
        return "ListBuckets" if method == "GET" else f"S3:{method}"
    if len(parts) == 1:  # bucket level
        if method == "GET":
            if has("list-type") and query["list-type"] == ["2"]:
                return "ListObjectsV2"
            for sub, op in (
                ("versions", "ListObjectVersions"),
                ("uploads", "ListMultipartUploads"),
                ("location", "GetBucketLocation"),
                ("tagging", "GetBucketTagging"),
                ("policy", "GetBucketPolicy"),
                ("versioning", "GetBucketVersioning"),
                ("acl", "GetBucketAcl"),
            ):
                if has(sub):
                    return op
            return "ListObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "PUT":
            return "PutBucketTagging" if has("tagging") else "CreateBucket"
        if method == "DELETE":
            return "DeleteBucket"
        if method == "POST" and has("delete"):
            return "DeleteObjects"
        return f"S3:{method}"
    # object level
    if method == "GET":
        if has("tagging"):
            return "GetObjectTagging"
        if has("uploadId"):
            return "ListParts"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        if has("uploadId") and has("partNumber"):
            if "HTTP_X_AMZ_COPY_SOURCE" in environ:
                return "UploadPartCopy"
            return "UploadPart"
        if has("tagging"):
            return "PutObjectTagging"
        if "HTTP_X_AMZ_COPY_SOURCE" in environ:
            return "CopyObject"
        return "PutObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if has("uploadId") else "DeleteObject"
    if method == "POST":
        if has("uploads"):
            return "CreateMultipartUpload"
        if has("uploadId"):
            return "CompleteMultipartUpload"
    return f"S3:{method}"


def _service_from_auth(environ: dict) -> str | None:
    """The service name in a SigV4 credential scope, e.g. "s3" or "ec2"."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return None
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    # <key id>/<date>/<region>/<service>/aws4_request
    return scope[3] if len(scope) >= 5 else None


class RequestLogger:
    """WSGI middleware appending one JSON line per request to a file.

    Each line: {"method", "path" (request target: path?query as sent),
    "service" (SigV4 scope, null if unsigned), "op", "status", "ts"}.
    `op` is the API operation: `Action` for query-protocol services such as
    EC2 (from the query string or the form-encoded POST body), the
    `X-Amz-Target` suffix for JSON services, and a guess from method, path
    and sub-resources for S3's REST API.

    The line is written before the response body goes out, so once a client
    has its response the line is in the file. The file is opened with
    O_APPEND, so a test may truncate it at any time to start a fresh count.
    """

    def __init__(self, app: Callable, path: str) -> None:
        self.app = app
        self.enabled = False  # switched on once the readiness probe is done
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1, encoding="utf-8")

    def close(self) -> None:
        with self._lock:
            self._file.close()

    @staticmethod
    def _buffer_form_body(environ: dict) -> dict:
        """Read a form-encoded body (EC2 query API) and put it back.

        moto reads wsgi.input itself afterwards, so the stream is replaced by
        a BytesIO holding the same bytes and CONTENT_LENGTH is set to match.
        """
        ctype = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") != "POST" or not ctype.startswith(
            "application/x-www-form-urlencoded"
        ):
            return {}
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length >= 0:
            body = environ["wsgi.input"].read(length)
        elif environ.get("wsgi.input_terminated"):  # chunked: read to the end
            body = environ["wsgi.input"].read()
        else:
            return {}  # unknown length: leave the stream alone
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return urllib.parse.parse_qs(body.decode("utf-8", "replace"))

    def _describe(self, environ: dict) -> dict:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        qs = environ.get("QUERY_STRING", "")
        query = urllib.parse.parse_qs(qs, keep_blank_values=True)
        service = _service_from_auth(environ)
        form = self._buffer_form_body(environ)
        target = environ.get("HTTP_X_AMZ_TARGET")

        if path.startswith("/moto-api"):
            op = "MotoApi"
        elif "Action" in query:
            op = query["Action"][0]
        elif "Action" in form:
            op = form["Action"][0]
        elif target:
            op = target.rsplit(".", 1)[-1]
        elif service in (None, "s3"):
            op = _guess_s3_operation(method, path, query, environ)
        else:
            op = f"{service}:{method}"
        return {
            "method": method,
            # The request target as sent (still percent-encoded).
            "path": environ.get("REQUEST_URI") or path + ("?" + qs if qs else ""),
            "service": service,
            "op": op,
        }

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not self.enabled:
            return self.app(environ, start_response)
        entry = self._describe(environ)
        status: list[str] = []

        def recording_start_response(s: str, headers: list, *exc: Any) -> Any:
            status.append(s)
            return start_response(s, headers, *exc)

        try:
            return self.app(environ, recording_start_response)
        finally:
            entry["status"] = int(status[-1].split()[0]) if status else None
            entry["ts"] = round(time.time(), 6)
            with self._lock:
                if not self._file.closed:
                    self._file.write(json.dumps(entry) + "\n")


class _ListPartsRoot:
    """moto 5.2.5 answers ListParts with a `<ListPartsResponse>` root; S3 (and its API model,
    which the Rust SDK parses strictly) names it `<ListPartsResult>`. Renamed here, as S3 sends it."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if environ.get("REQUEST_METHOD") != "GET" or "uploadId" not in query:
            return self.app(environ, start_response)
        held: list = []

        def hold(status: str, headers: list, *exc: Any) -> Any:
            held.append((status, headers, exc))
            return lambda data: None

        body = b"".join(self.app(environ, hold))
        body = body.replace(b"<ListPartsResponse", b"<ListPartsResult").replace(b"</ListPartsResponse>", b"</ListPartsResult>")
        status, headers, exc = held[-1]
        headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(status, headers, *exc)
        return [body]


def _stdin_is_pipe() -> bool:
    """True when stdin is a pipe or socket, i.e. EOF means the parent is gone.

    /dev/null (background jobs, CI without stdin) and terminals are not
    watched: the first would stop the server at once, the second never ends.
    """
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _wait_for_http(host: str, port: int, timeout: float = 30.0) -> None:
    """Poll until the server answers any HTTP response."""
    deadline = time.monotonic() + timeout
    url = f"http://{host}:{port}/moto-api/"
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # a 4xx/5xx is still an HTTP answer
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cmd_serve(args: argparse.Namespace) -> int:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    if not args.verbose:
        # werkzeug logs every request to stderr; a parent that pipes stderr
        # without reading it would eventually block the server.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    class CachingDispatcher(DomainDispatcherApplication):
        """moto's dispatcher with host -> backend lookups memoized.

        Upstream resolves the backend for every request by listing moto's
        package directory (~180 stat calls) and trying ~100 URL regexes, all
        under a global lock: about 2 ms of the ~4.5 ms moto spends on a small
        PutObject. The answer depends only on the host string, so cache it.
        """

        _backend_cache: dict = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            # Called with self.lock held, so the dict needs no lock of its own.
            if host not in self._backend_cache:
                self._backend_cache[host] = super().get_backend_for_host(host)
            return self._backend_cache[host]

    # Same app ThreadedMotoServer builds, served by us so it can be wrapped.
    app: Callable = _ListPartsRoot(CachingDispatcher(create_backend_app))
    logger = RequestLogger(app, args.log_requests) if args.log_requests else None
    server = make_server(
        args.host,
        args.port,  # 0: the kernel picks a free port, no bind race
        logger or app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    port = server.server_port
    # moto builds some URLs (e.g. SQS queue URLs) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _wait_for_http(args.host, port)
    if logger:
        logger.enabled = True

    # Publish the port atomically: readers never see a half-written file.
    tmp = f"{args.port_file}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    _emit({"endpoint": f"http://{args.host}:{port}", "port": port, "pid": os.getpid()})

    watch = {"auto": _stdin_is_pipe(), "on": True, "off": False}[args.stdin_watch]
    if watch:

        def drain_stdin() -> None:
            # os.read on the raw fd, not sys.stdin.buffer: a daemon thread
            # blocked inside BufferedReader holds its lock and makes the
            # interpreter abort at exit ("could not acquire lock for stdin").
            fd = sys.stdin.fileno()
            try:
                while os.read(fd, 65536):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=drain_stdin, daemon=True).start()

    while not stop.wait(0.5):
        pass

    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    if logger:
        logger.close()
    try:
        os.remove(args.port_file)
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------


def _object_key(i: int, prefixes: int) -> str:
    return f"data/p{i % prefixes:03}/sub{i % 7}/obj-{i:06}.txt"


def _object_body(i: int, key: str) -> bytes:
    """Deterministic content of exactly i % 1000 bytes (0 bytes for i % 1000 == 0)."""
    size = i % 1000
    line = (key + "\n").encode()
    return (line * (size // len(line) + 1))[:size]


def _create_bucket(s3: Any, bucket: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 rejects an explicit constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)


def cmd_seed_s3(args: argparse.Namespace) -> int:
    started = time.monotonic()
    s3 = _client("s3", args.endpoint, args.region)
    _create_bucket(s3, args.bucket, args.region)
    extra = [f"{args.bucket}-extra-{k}" for k in range(args.extra_buckets)]
    for name in extra:
        _create_bucket(s3, name, args.region)

    # One client per worker thread; each worker gets a contiguous slice of
    # indices so clients are created once, not per object.
    workers = max(1, min(args.workers, args.objects))
    slices = [range(w, args.objects, workers) for w in range(workers)]

    def put_slice(indices: range) -> int:
        client = _client("s3", args.endpoint, args.region, pool=2)
        for i in indices:
            key = _object_key(i, args.prefixes)
            client.put_object(Bucket=args.bucket, Key=key, Body=_object_body(i, key))
        return len(indices)

    written = sum(_parallel(workers, slices, put_slice))
    _emit(
        {
            "bucket": args.bucket,
            "objects": written,
            "prefixes": args.prefixes,
            "extra_buckets": extra,
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return 0


def _crc64nvme(data: bytes) -> int:
    """CRC-64/NVME (reflected, polynomial 0xAD93D23594C93659, init and xorout all ones): awscrt's
    (which setup-venv.sh installs), else in pure Python (slow: small objects only)."""
    try:
        from awscrt import checksums

        return checksums.crc64nvme(data)
    except ImportError:
        pass
    table = _crc64nvme.table  # type: ignore[attr-defined]
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def _crc64nvme_table() -> list[int]:
    poly = 0x9A6C9329AC4BC9B5  # 0xAD93D23594C93659 reflected
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_crc64nvme.table = _crc64nvme_table()  # type: ignore[attr-defined]


def _has_awscrt() -> bool:
    try:
        import awscrt  # noqa: F401

        return True
    except ImportError:
        return False


def cmd_list_s3(args: argparse.Namespace) -> int:
    s3 = _client("s3", args.endpoint, args.region)
    paginator = s3.get_paginator("list_objects_v2")
    params: dict[str, Any] = {"Bucket": args.bucket}
    if args.prefix:
        params["Prefix"] = args.prefix
    objects = []
    for page in paginator.paginate(**params):
        for obj in page.get("Contents", []):
            objects.append(
                {
                    "key": obj["Key"],
                    "size": obj["Size"],
                    "etag": obj["ETag"],  # as S3 sends it: with the quotes
                    "last_modified": _iso(obj["LastModified"]),
                    "storage_class": obj.get("StorageClass"),
                    "checksum_algorithm": obj.get("ChecksumAlgorithm"),
                }
            )
    if args.details:
        # What a copy has to carry over besides the bytes.
        for o in objects:
            head = s3.head_object(Bucket=args.bucket, Key=o["key"])
            o["content_type"] = head.get("ContentType")
            o["metadata"] = head.get("Metadata", {})
            tags = s3.get_object_tagging(Bucket=args.bucket, Key=o["key"])["TagSet"]
            o["tags"] = {t["Key"]: t["Value"] for t in tags}
    if args.checksums:
        # What S3 keeps (HEAD with checksum mode on), and the CRC64NVME of the body computed
        # here (for objects up to 1 MiB without awscrt).
        for o in objects:
            head = s3.head_object(Bucket=args.bucket, Key=o["key"], ChecksumMode="ENABLED")
            o["checksum_crc64nvme"] = head.get("ChecksumCRC64NVME")
            o["checksum_type"] = head.get("ChecksumType")
            if o["size"] <= 1 << 20 or _has_awscrt():
                body = s3.get_object(Bucket=args.bucket, Key=o["key"])["Body"].read()
                o["computed_crc64nvme"] = base64.b64encode(_crc64nvme(body).to_bytes(8, "big")).decode()
    objects.sort(key=lambda o: o["key"])
    _emit(objects)
    return 0


def _pattern(size: int) -> bytes:
    """`size` bytes in which no two 32-byte blocks are alike (SHA-256 of a counter), so a copy
    with a part misplaced or repeated differs from its source."""
    blocks = (size + 31) // 32
    return b"".join(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(blocks))[:size]


def cmd_put_objects(args: argparse.Namespace) -> int:
    """Objects from a JSON list of {key, size, storage_class?} (bodies of `size` bytes of 'x')."""
    s3 = _client("s3", args.endpoint, args.region)
    try:
        _create_bucket(s3, args.bucket, args.region)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if args.versioned:
        s3.put_bucket_versioning(Bucket=args.bucket, VersioningConfiguration={"Status": "Enabled"})
    specs = json.loads(args.objects)
    for spec in specs:
        if spec.get("delete"):  # in a versioned bucket: a delete marker
            s3.delete_object(Bucket=args.bucket, Key=spec["key"])
            continue
        if "multipart" in spec:  # a completed multipart upload of parts of these sizes (boto3's checksum defaults)
            upload = s3.create_multipart_upload(Bucket=args.bucket, Key=spec["key"])
            done = []
            for number, size in enumerate(spec["multipart"], start=1):
                part = s3.upload_part(Bucket=args.bucket, Key=spec["key"], UploadId=upload["UploadId"], PartNumber=number, Body=b"x" * size)
                done.append({"PartNumber": number, "ETag": part["ETag"]})
            s3.complete_multipart_upload(Bucket=args.bucket, Key=spec["key"], UploadId=upload["UploadId"], MultipartUpload={"Parts": done})
            continue
        if "parts" in spec:  # an incomplete multipart upload: these parts uploaded, never completed
            extra = {"StorageClass": spec["storage_class"]} if spec.get("storage_class") else {}
            upload = s3.create_multipart_upload(Bucket=args.bucket, Key=spec["key"], **extra)
            for number, size in enumerate(spec["parts"], start=1):
                s3.upload_part(Bucket=args.bucket, Key=spec["key"], UploadId=upload["UploadId"], PartNumber=number, Body=b"p" * size)
            continue
        extra = {"StorageClass": spec["storage_class"]} if spec.get("storage_class") else {}
        if spec.get("content_type"):
            extra["ContentType"] = spec["content_type"]
        if spec.get("metadata"):
            extra["Metadata"] = spec["metadata"]
        if spec.get("tags"):
            extra["Tagging"] = urllib.parse.urlencode(spec["tags"])
        body = _pattern(spec["size"]) if spec.get("body") == "pattern" else b"x" * spec["size"]
        s3.put_object(Bucket=args.bucket, Key=spec["key"], Body=body, **extra)
    _emit({"bucket": args.bucket, "objects": len(specs)})
    return 0


def cmd_du_sums(args: argparse.Namespace) -> int:
    """Bytes and objects per storage class and per depth-1 prefix (or, with --versions, per kind
    of version: current, noncurrent, delete marker), summed from boto3's listing.

    A depth-1 prefix is the prefix plus the key's first segment and `/`; a key with no `/`
    after the prefix counts at the prefix itself.
    """
    s3 = _client("s3", args.endpoint, args.region)
    if args.uploads:
        # Incomplete multipart uploads: how many, and the bytes of the parts uploaded so far.
        uploads = [0, 0]
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=args.bucket, Prefix=args.prefix):
            for upload in page.get("Uploads", []):
                uploads[0] += 1
                parts = s3.get_paginator("list_parts").paginate(Bucket=args.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                uploads[1] += sum(p["Size"] for part_page in parts for p in part_page.get("Parts", []))
        _emit({"uploads": uploads})
        return 0
    if args.versions:
        by_kind: dict[str, list[int]] = {}
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=args.bucket, Prefix=args.prefix)
        for page in pages:
            for v in page.get("Versions", []):
                sums = by_kind.setdefault("current" if v["IsLatest"] else "noncurrent", [0, 0])
                sums[0] += 1
                sums[1] += v["Size"]
            for _ in page.get("DeleteMarkers", []):
                by_kind.setdefault("delete marker", [0, 0])[0] += 1
        _emit({"version": by_kind})
        return 0
    by_class: dict[str, list[int]] = {}
    by_prefix: dict[str, list[int]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.prefix):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(args.prefix):]
            head = rest.split("/", 1)[0] + "/" if "/" in rest else ""
            prefix = f"s3://{args.bucket}/{args.prefix}{head}"
            for table, group in ((by_class, obj.get("StorageClass", "STANDARD")), (by_prefix, prefix)):
                sums = table.setdefault(group, [0, 0])
                sums[0] += 1
                sums[1] += obj["Size"]
    _emit({"storage_class": by_class, "prefix": by_prefix})
    return 0


# --------------------------------------------------------------------------
# EC2
# --------------------------------------------------------------------------


def _first_amazon_ami(ec2: Any) -> str:
    images = ec2.describe_images(Owners=["amazon"])["Images"]
    if not images:
        raise SystemExit("moto returned no Amazon-owned AMIs")
    return sorted(img["ImageId"] for img in images)[0]


def cmd_seed_ec2(args: argparse.Namespace) -> int:
    started = time.monotonic()
    ec2 = _client("ec2", args.endpoint, args.region)
    ami = _first_amazon_ami(ec2)
    # moto leaves SecurityGroups empty unless asked; AWS would attach the
    # VPC's default group, so do that explicitly.
    default_sg = ec2.describe_security_groups(GroupNames=["default"])[
        "SecurityGroups"
    ][0]["GroupId"]
    n = args.instances

    # Instance i has type INSTANCE_TYPES[i % 3]: launch each type's indices in
    # batches (one reservation per batch) and map returned ids back in order.
    batches: list[tuple[str, list[int]]] = []
    for t, itype in enumerate(INSTANCE_TYPES):
        indices = list(range(t, n, len(INSTANCE_TYPES)))
        batches += [(itype, chunk) for chunk in _chunks(indices, args.batch_size)]

    id_of: dict[int, str] = {}
    local = threading.local()

    def thread_client() -> Any:
        if not hasattr(local, "ec2"):
            local.ec2 = _client("ec2", args.endpoint, args.region, pool=2)
        return local.ec2

    def launch(batch: tuple[str, list[int]]) -> None:
        itype, indices = batch
        resp = thread_client().run_instances(
            ImageId=ami,
            InstanceType=itype,
            SecurityGroupIds=[default_sg],
            MinCount=len(indices),
            MaxCount=len(indices),
        )
        for i, inst in zip(indices, resp["Instances"]):
            id_of[i] = inst["InstanceId"]

    _parallel(min(4, len(batches)) or 1, batches, launch)

    # Tags differ per instance (Name), so tag one instance per call.
    def tag(i: int) -> None:
        thread_client().create_tags(
            Resources=[id_of[i]],
            Tags=[
                {"Key": "Name", "Value": f"web-{i:04}"},
                {"Key": "Team", "Value": f"team-{i % 5}"},
            ],
        )

    _parallel(args.workers, range(n), tag)

    to_stop = [id_of[i] for i in range(0, n, 10)]
    for chunk in _chunks(to_stop, 100):
        ec2.stop_instances(InstanceIds=chunk)

    _emit(
        {
            "instances": n,
            "stopped": len(to_stop),
            "reservations": len(batches),
            "ami": ami,
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return 0


def cmd_seed_accounts(args: argparse.Namespace) -> int:
    """Instances in several accounts x regions, each account entered as nuaws's `--accounts`
    enters it: STS AssumeRole into arn:aws:iam::<account>:role/<role-name> (moto keeps the
    resources of each assumed account apart). Account a (0-based) gets a + 1 + A * r instances
    in region r (A accounts), so every (account, region) has a count of its own; each instance
    is named `<account>-<region>`."""
    import boto3
    from botocore.config import Config

    started = time.monotonic()
    accounts = args.accounts.split(",")
    regions = args.regions.split(",")
    sts = _client("sts", args.endpoint, regions[0])
    seeded: dict[str, dict[str, list[str]]] = {}
    for a, account in enumerate(accounts):
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{args.role_name}", RoleSessionName="harness"
        )["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        for r, region in enumerate(regions):
            ec2 = session.client(
                "ec2",
                endpoint_url=args.endpoint,
                region_name=region,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
            n = a + 1 + len(accounts) * r
            resp = ec2.run_instances(
                ImageId=_first_amazon_ami(ec2),
                InstanceType="t3.micro",
                MinCount=n,
                MaxCount=n,
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"{account}-{region}"}]}
                ],
            )
            seeded.setdefault(account, {})[region] = sorted(i["InstanceId"] for i in resp["Instances"])
    _emit({"instances": seeded, "seconds": round(time.monotonic() - started, 3)})
    return 0


def cmd_list_ec2(args: argparse.Namespace) -> int:
    ec2 = _client("ec2", args.endpoint, args.region)
    instances = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page.get("Reservations", []):
            for inst in reservation.get("Instances", []):
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                instances.append(
                    {
                        "id": inst["InstanceId"],
                        "state": inst["State"]["Name"],
                        "type": inst.get("InstanceType"),
                        "name": tags.get("Name"),
                        "tags": tags,
                        "launch_time": _iso(inst.get("LaunchTime")),
                        "private_ip": inst.get("PrivateIpAddress"),
                        "public_ip": inst.get("PublicIpAddress"),
                        "vpc_id": inst.get("VpcId"),
                        "subnet_id": inst.get("SubnetId"),
                        "security_group_ids": [
                            g["GroupId"] for g in inst.get("SecurityGroups", [])
                        ],
                    }
                )
    instances.sort(key=lambda i: i["id"])
    _emit(instances)
    return 0


def _first_amazon_amis(ec2: Any, n: int) -> list[str]:
    images = sorted(img["ImageId"] for img in ec2.describe_images(Owners=["amazon"])["Images"])
    if len(images) < n:
        raise SystemExit(f"moto returned {len(images)} Amazon-owned AMIs, {n} needed")
    return images[:n]


def cmd_seed_enrich(args: argparse.Namespace) -> int:
    """Instances sharing few resources, for `aws ec2 enrich`: 2 VPCs with 2 subnets each, 5
    security groups (3 in the first VPC, 2 in the second), 2 AMIs. Instance i is in VPC i % 2,
    subnet (i // 2) % 2 of it, the two groups number i and i + 1 (mod the VPC's groups), and
    runs AMI (i // 3) % 2. Instances of one configuration are launched in one call."""
    started = time.monotonic()
    ec2 = _client("ec2", args.endpoint, args.region)
    amis = _first_amazon_amis(ec2, 2)
    vpcs, subnets, groups = [], [], []
    for v, groups_in_vpc in enumerate((3, 2)):
        vpc = ec2.create_vpc(CidrBlock=f"10.{v + 1}.0.0/16")["Vpc"]["VpcId"]
        vpcs.append(vpc)
        subnets.append(
            [
                ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{v + 1}.{s}.0/24")["Subnet"]["SubnetId"]
                for s in range(2)
            ]
        )
        groups.append(
            [
                ec2.create_security_group(
                    GroupName=f"enrich-{v}-{g}", Description=f"group {g} of vpc {v}", VpcId=vpc
                )["GroupId"]
                for g in range(groups_in_vpc)
            ]
        )

    def config(i: int) -> tuple[int, str, tuple[str, ...], str]:
        v = i % 2
        own = groups[v]
        return (v, subnets[v][(i // 2) % 2], (own[i % len(own)], own[(i + 1) % len(own)]), amis[(i // 3) % 2])

    by_config: dict[tuple, list[int]] = {}
    for i in range(args.instances):
        by_config.setdefault(config(i), []).append(i)
    instances: dict[str, dict] = {}
    for (v, subnet, sgs, ami), indices in by_config.items():
        resp = ec2.run_instances(
            ImageId=ami,
            InstanceType="t3.micro",
            SubnetId=subnet,
            SecurityGroupIds=list(sgs),
            MinCount=len(indices),
            MaxCount=len(indices),
        )
        for i, inst in zip(indices, resp["Instances"]):
            instances[inst["InstanceId"]] = {
                "vpc": vpcs[v],
                "subnet": subnet,
                "security_groups": list(sgs),
                "image": ami,
            }
    _emit(
        {
            "instances": instances,
            "vpcs": vpcs,
            "subnets": [s for pair in subnets for s in pair],
            "security_groups": [g for own in groups for g in own],
            "images": amis,
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    return 0


def cmd_seed_tags(args: argparse.Namespace) -> int:
    """Resources tagged `Application` = web or billing (and some that are not), for `aws tags
    correlate`: in the region, instances, volumes, a snapshot, a security group and a VPC; with
    --buckets, buckets too (in the region). Prints what carries `Application`, as the rows
    `aws tags correlate Application` should give (unsorted): value, type, id, name, region."""
    ec2 = _client("ec2", args.endpoint, args.region)
    s3 = _client("s3", args.endpoint, args.region)
    ami = _first_amazon_ami(ec2)
    prefix = args.region
    expected: list[dict] = []

    def tag(resource_id: str, kind: str, tags: dict[str, str]) -> None:
        ec2.create_tags(Resources=[resource_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        if "Application" in tags:
            expected.append(
                {
                    "value": tags["Application"],
                    "type": kind,
                    "id": resource_id,
                    "name": tags.get("Name"),
                    "region": args.region,
                }
            )

    instances = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=4, MaxCount=4)["Instances"]
    ]
    tag(instances[0], "instance", {"Application": "web", "Name": f"{prefix}-web-1"})
    tag(instances[1], "instance", {"Application": "web"})
    tag(instances[2], "instance", {"Application": "billing", "Name": f"{prefix}-billing-1"})
    # A near miss: another key with the same value.
    tag(instances[3], "instance", {"App": "web", "Name": f"{prefix}-other"})
    zone = f"{args.region}a"
    web_volume = ec2.create_volume(AvailabilityZone=zone, Size=8)["VolumeId"]
    tag(web_volume, "volume", {"Application": "web", "Name": f"{prefix}-web-data"})
    billing_volume = ec2.create_volume(AvailabilityZone=zone, Size=8)["VolumeId"]
    tag(billing_volume, "volume", {"Application": "billing"})
    ec2.create_volume(AvailabilityZone=zone, Size=8)  # untagged
    snapshot = ec2.create_snapshot(VolumeId=web_volume, Description="web backup")["SnapshotId"]
    tag(snapshot, "snapshot", {"Application": "web", "Name": f"{prefix}-web-backup"})
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    tag(vpc, "vpc", {"Application": "web", "Name": f"{prefix}-web-vpc"})
    group = ec2.create_security_group(GroupName="billing-sg", Description="billing", VpcId=vpc)["GroupId"]
    tag(group, "security-group", {"Application": "billing"})

    if args.buckets:
        buckets = {
            f"{prefix}-web-assets": {"Application": "web", "Name": "web assets"},
            f"{prefix}-billing-reports": {"Application": "billing"},
            f"{prefix}-team-bucket": {"Team": "core"},
            f"{prefix}-untagged": {},
        }
        for name, tags in buckets.items():
            _create_bucket(s3, name, args.region)
            if tags:
                s3.put_bucket_tagging(
                    Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
                )
            if "Application" in tags:
                expected.append(
                    {
                        "value": tags["Application"],
                        "type": "bucket",
                        "id": name,
                        "name": tags.get("Name"),
                        "region": args.region,
                    }
                )
    _emit(expected)
    return 0


# --------------------------------------------------------------------------
# Request log and reset
# --------------------------------------------------------------------------


# The objects the examples of nuaws's commands refer to (`help aws s3 open`, ...): the tests run
# every example against them, and the demo shows them.
EXAMPLE_BUCKET = "my-bucket"
EXAMPLE_OBJECTS = {
    "data/report.json": json.dumps(
        {"title": "Quarterly report", "quarter": 3, "regions": ["eu", "us"], "total": 1234.5}
    ),
    "data/users.csv": "name,active,team\nada,true,core\nlinus,false,kernel\ngrace,true,core\n",
    "data/config.yaml": "service: api\nreplicas: 3\nports: [80, 443]\n",
    "logs/2026/11/app-01.log": "started\n" * 50,
    "logs/2026/11/app-02.log": "request served\n" * 400,
    "logs/2026/11/app-03.log": "error: timeout\n" * 5,
    "logs/2026/12/app-01.log": "started\n" * 10,
    "tmp/old.txt": "scratch\n",
    "tmp/build/output.bin": "\x00" * 2048,
    "README.txt": "example bucket for nuaws\n",
}


def cmd_seed_examples(args: argparse.Namespace) -> int:
    s3 = _client("s3", args.endpoint, args.region)
    _create_bucket(s3, EXAMPLE_BUCKET, args.region)
    for key, body in EXAMPLE_OBJECTS.items():
        s3.put_object(Bucket=EXAMPLE_BUCKET, Key=key, Body=body.encode())
    ec2 = _client("ec2", args.endpoint, args.region)
    volume = ec2.create_volume(AvailabilityZone=f"{args.region}a", Size=8)
    ec2.create_snapshot(VolumeId=volume["VolumeId"], Description="example snapshot")
    ec2.create_volume(AvailabilityZone=f"{args.region}a", Size=20)
    _emit({"bucket": EXAMPLE_BUCKET, "objects": len(EXAMPLE_OBJECTS)})
    return 0


def cmd_make_user(args: argparse.Namespace) -> int:
    """An IAM user with an access key and no permissions (for access-denied tests).

    Run it first against a server started with INITIAL_NO_AUTH_ACTION_COUNT=2: its two calls are
    the last unauthenticated ones, so every later request is checked against IAM.
    """
    iam = _client("iam", args.endpoint, args.region)
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    _emit({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]})
    return 0


def cmd_count_requests(args: argparse.Namespace) -> int:
    count = 0
    by_op: dict[str, int] = {}
    try:
        with open(args.log, encoding="utf-8") as f:
            lines = f.readlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        entry = json.loads(line)
        if args.service and entry.get("service") != args.service:
            continue
        if args.method and entry.get("method") != args.method.upper():
            continue
        by_op[entry["op"]] = by_op.get(entry["op"], 0) + 1
        if args.op and entry["op"] != args.op:
            continue
        count += 1
    _emit({"count": count, "by_op": dict(sorted(by_op.items()))})
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    url = args.endpoint.rstrip("/") + "/moto-api/reset"
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        status = resp.status
    _emit({"reset": status == 200, "status": status})
    return 0


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness.py", description=__doc__.split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)

    def with_endpoint(sp: argparse.ArgumentParser, region: bool = True) -> None:
        sp.add_argument("--endpoint", required=True, help="e.g. http://127.0.0.1:5000")
        if region:
            sp.add_argument("--region", default=DEFAULT_REGION)

    sp = sub.add_parser("serve", help="run a moto server on loopback")
    sp.add_argument("--port-file", required=True, help="file to write the port to once ready")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=0, help="0 (default): pick a free port")
    sp.add_argument("--log-requests", metavar="FILE", help="append one JSON line per request")
    sp.add_argument(
        "--stdin-watch",
        choices=("auto", "on", "off"),
        default="auto",
        help="exit when stdin hits EOF; auto: only if stdin is a pipe/socket",
    )
    sp.add_argument("--verbose", action="store_true", help="keep werkzeug's access log")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("seed-s3", help="create a bucket with many small objects")
    with_endpoint(sp)
    sp.add_argument("--bucket", required=True)
    sp.add_argument("--objects", type=int, required=True)
    sp.add_argument("--prefixes", type=int, default=50, help="top-level prefixes p000..")
    sp.add_argument("--extra-buckets", type=int, default=0, help="also create B-extra-0..K-1")
    sp.add_argument("--workers", type=int, default=16)
    sp.set_defaults(func=cmd_seed_s3)

    sp = sub.add_parser("list-s3", help="reference listing of a bucket")
    with_endpoint(sp)
    sp.add_argument("--bucket", required=True)
    sp.add_argument("--prefix", default="")
    sp.add_argument("--checksums", action="store_true", help="also each object's checksum as S3 keeps it, and its CRC64NVME computed here")
    sp.add_argument("--details", action="store_true", help="also each object's content type, user metadata and tags")
    sp.set_defaults(func=cmd_list_s3)

    sp = sub.add_parser("put-objects", help="put objects with chosen keys, sizes, storage classes")
    with_endpoint(sp)
    sp.add_argument("--bucket", required=True)
    sp.add_argument("--objects", required=True, help='JSON: [{"key": .., "size": .., "storage_class": .., "content_type": .., "metadata": {..}, "tags": {..}, "body": "pattern"}], {"key": .., "delete": true}, or {"key": .., "parts": [sizes]} (an incomplete upload)')
    sp.add_argument("--versioned", action="store_true", help="turn versioning on first")
    sp.set_defaults(func=cmd_put_objects)

    sp = sub.add_parser("du-sums", help="objects and bytes per storage class and depth-1 prefix")
    with_endpoint(sp)
    sp.add_argument("--bucket", required=True)
    sp.add_argument("--prefix", default="")
    sp.add_argument("--versions", action="store_true", help="per kind of version instead")
    sp.add_argument("--uploads", action="store_true", help="incomplete multipart uploads and their parts' bytes instead")
    sp.set_defaults(func=cmd_du_sums)

    sp = sub.add_parser("seed-ec2", help="launch many tagged instances")
    with_endpoint(sp)
    sp.add_argument("--instances", type=int, required=True)
    sp.add_argument(
        "--batch-size",
        type=int,
        default=100,
        help="instances per run_instances call, i.e. per reservation (max 100)",
    )
    sp.add_argument("--workers", type=int, default=16)
    sp.set_defaults(func=cmd_seed_ec2)

    sp = sub.add_parser("seed-accounts", help="instances in several assumed accounts x regions")
    with_endpoint(sp, region=False)
    sp.add_argument("--accounts", required=True, help="comma-separated 12-digit account ids")
    sp.add_argument("--regions", required=True, help="comma-separated region names")
    sp.add_argument("--role-name", default="x")
    sp.set_defaults(func=cmd_seed_accounts)

    sp = sub.add_parser("list-ec2", help="reference listing of all instances")
    with_endpoint(sp)
    sp.set_defaults(func=cmd_list_ec2)

    sp = sub.add_parser("seed-enrich", help="instances sharing few VPCs, subnets, groups and AMIs")
    with_endpoint(sp)
    sp.add_argument("--instances", type=int, default=100)
    sp.set_defaults(func=cmd_seed_enrich)

    sp = sub.add_parser("seed-tags", help="resources tagged Application=web|billing")
    with_endpoint(sp)
    sp.add_argument("--buckets", action="store_true", help="also create tagged buckets")
    sp.set_defaults(func=cmd_seed_tags)

    sp = sub.add_parser("count-requests", help="count requests in a serve log")
    sp.add_argument("--log", required=True, help="file given to serve --log-requests")
    sp.add_argument("--op", help="only this operation, e.g. ListObjectsV2")
    sp.add_argument("--service", help="only this SigV4 service, e.g. s3 or ec2")
    sp.add_argument("--method", help="only this HTTP method")
    # Ignored; accepted so a caller can pass --endpoint to every subcommand.
    sp.add_argument("--endpoint", help=argparse.SUPPRESS)
    sp.set_defaults(func=cmd_count_requests)

    sp = sub.add_parser("seed-examples", help="the objects and resources the examples use")
    with_endpoint(sp)
    sp.set_defaults(func=cmd_seed_examples)

    sp = sub.add_parser("make-user", help="an IAM user with a key and no permissions")
    with_endpoint(sp)
    sp.set_defaults(func=cmd_make_user)

    sp = sub.add_parser("reset", help="wipe all moto state")
    with_endpoint(sp, region=False)
    sp.set_defaults(func=cmd_reset)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "batch_size", 1) not in range(1, 101):
        raise SystemExit("--batch-size must be between 1 and 100")
    _dummy_credentials()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
