"""The secret scanner used by ``tests/test_secret_scan.py``.

:func:`assert_no_secret` fails when a secret appears in a text (or bytes) in any form it
could take on the way: as is, percent-encoded (``quote``, ``quote_plus``), JSON-escaped
(``ensure_ascii`` on and off), escaped by ``repr``/``ascii`` (of the text and of its UTF-8
bytes), or Base64-encoded (standard and URL-safe alphabets, at each of the three byte
alignments it can have inside a longer encoded value, so the Base64 of ``id:secret`` in a
``Basic`` header is found too). Bytes are searched for the UTF-8 and the raw-unicode-escape
encodings of every form (what ``pickle`` writes).

:func:`views` gives every view of an object that a log, a report or another process could
see: ``repr``, ``str``, ``format``, the pickle and what unpickling it gives, ``vars`` and,
for an exception, its ``args``, its formatted traceback and every exception chained to it
(``__cause__`` and ``__context__``, suppressed or not), and an ``APIError``'s body as JSON.

:class:`RecordingEmulator` is a ``GatewayEmulator`` that remembers every access token it
issues (through its public ``issue_token``), so that each one can be scanned for.

:class:`Scan` is one test's capture of every channel (logs at DEBUG, warnings, stdout and
stderr, spans) plus the errors and objects the test hands it, and the scan of them all.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import pickle
import traceback
import warnings
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import quote, quote_plus

import pytest

import genesys_gateway as gg
from genesys_gateway import demo
from genesys_gateway.testing import GatewayEmulator

__all__ = [
    "MIN_SECRET_CHARS",
    "secret_forms",
    "assert_no_secret",
    "views",
    "assert_views_clean",
    "LogCapture",
    "RecordingEmulator",
    "Recorder",
    "Scan",
    "TRANSPORTS",
    "span_exporter",
]

#: Shorter secrets would match by chance; every secret in the scan is longer.
MIN_SECRET_CHARS = 12
_URLSAFE = str.maketrans("+/", "-_")


def _base64_cores(data: bytes) -> dict[str, str]:
    """Texts found in the Base64 encoding of any byte string that contains ``data``: for
    each alignment of ``data`` (its offset modulo 3), the 4-character groups made of its
    bytes only (the groups at its edges also depend on the neighbouring bytes)."""
    cores: dict[str, str] = {}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data + b"\0\0").decode("ascii")
        first, end = -(-shift // 3), (shift + len(data)) // 3  # whole groups inside data
        core = encoded[first * 4:end * 4]
        if len(core) >= 8:
            cores[core] = f"base64 (offset {shift})"
            cores.setdefault(core.translate(_URLSAFE), f"url-safe base64 (offset {shift})")
    return cores


def secret_forms(secret: str) -> dict[str, str]:
    """Every form of ``secret`` to look for, mapped to a description of the form."""
    forms: dict[str, str] = {}

    def add(form: str, kind: str) -> None:
        if form and form not in forms:
            forms[form] = kind

    add(secret, "as is")
    add(quote(secret, safe=""), "percent-encoded")
    add(quote(secret), "percent-encoded (path)")
    add(quote_plus(secret), "form-encoded")
    add(json.dumps(secret)[1:-1], "JSON-escaped")
    add(json.dumps(secret, ensure_ascii=False)[1:-1], "JSON-escaped (UTF-8)")
    add(repr(secret)[1:-1], "repr-escaped")
    add(ascii(secret)[1:-1], "ascii-escaped")
    add(repr(secret.encode("utf-8"))[2:-1], "repr of its UTF-8 bytes")
    for form, kind in _base64_cores(secret.encode("utf-8")).items():
        add(form, kind)
    return forms


def _byte_forms(form: str) -> list[bytes]:
    """``form`` as UTF-8, and as a protocol-0 pickle writes a string (raw-unicode-escape,
    with backslashes and line breaks escaped too)."""
    pickled = form
    for char in "\\\0\n\r\x1a":
        pickled = pickled.replace(char, f"\\u{ord(char):04x}")
    encoded = [form.encode("utf-8"), form.encode("raw_unicode_escape"), pickled.encode("raw_unicode_escape")]
    return list(dict.fromkeys(encoded))


def assert_no_secret(data: str | bytes, secrets: Iterable[str], where: str = "") -> None:
    """Fail if any of ``secrets``, in any of its :func:`secret_forms`, occurs in ``data``.
    The message says which secret (by position), in which form, where, with context."""
    secrets = list(secrets)
    assert secrets, "a scan needs secrets to look for"
    for index, secret in enumerate(secrets):
        assert isinstance(secret, str) and len(secret) >= MIN_SECRET_CHARS, \
            f"secret #{index} is too short to scan for: {secret!r}"
        for form, kind in secret_forms(secret).items():
            needles: list[Any] = [form] if isinstance(data, str) else _byte_forms(form)
            for needle in needles:
                at = data.find(needle)
                if at >= 0:
                    before = data[max(0, at - 80):at]
                    after = data[at + len(needle):at + len(needle) + 80]
                    raise AssertionError(
                        f"secret #{index} {secret!r} found {kind} in {where or 'the text'}: "
                        f"...{before!r} [[{needle!r}]] {after!r}..."
                    )


def _exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and every exception reachable through ``__cause__``/``__context__``
    (suppressed context included: some reporters show it anyway)."""
    seen: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return seen


def views(obj: object, *, carrier: bool = False) -> dict[str, str | bytes]:
    """Every view of ``obj`` a person, a log, a report or another process could get.

    ``carrier=True`` is for the objects whose job is to hold a credential (a
    ``BearerToken``, a ``Token``, an ``HTTPRequest`` or ``HTTPResponse``, ``ClientCredentials``,
    ``ClientOptions`` with a secret extra header):
    what they show (``repr``, ``str``, ``format``) is scanned; their pickle and ``vars``,
    which must hold the credential to be of any use, are not.
    """
    out: dict[str, str | bytes] = {"repr": repr(obj), "str": str(obj), "format": f"{obj}"}
    if carrier:
        return out
    try:
        data = pickle.dumps(obj)
    except Exception as e:  # an unpicklable object: its refusal must not quote a secret
        out["pickle error"] = f"{type(e).__name__}: {e}"
    else:
        out["pickle"] = data
        out["pickle (protocol 0)"] = _protocol_0(obj)
        copy = pickle.loads(data)
        out["unpickled repr"] = repr(copy)
        out["unpickled str"] = str(copy)
        if hasattr(copy, "__dict__"):
            out["unpickled vars"] = repr(vars(copy))
    if hasattr(obj, "__dict__"):
        out["vars"] = repr(vars(obj))
    if isinstance(obj, BaseException):
        out["args"] = repr(obj.args)
        out["traceback"] = "".join(traceback.format_exception(type(obj), obj, obj.__traceback__))
        for n, linked in enumerate(_exception_chain(obj)[1:]):
            out[f"chained #{n + 1}"] = f"{type(linked).__name__}: {linked!s} {linked!r} {linked.args!r}"
        body = getattr(obj, "body", None)
        if body is not None:
            out["body as JSON"] = json.dumps(body, default=repr, ensure_ascii=False)
    return out


def _protocol_0(obj: object) -> bytes:
    try:
        return pickle.dumps(obj, protocol=0)
    except Exception as e:
        return f"{type(e).__name__}: {e}".encode()


def assert_views_clean(name: str, obj: object, secrets: Iterable[str], *, carrier: bool = False) -> int:
    """:func:`assert_no_secret` on every one of :func:`views`; returns how many were scanned."""
    secrets = list(secrets)
    scanned = views(obj, carrier=carrier)
    for view, text in scanned.items():
        assert_no_secret(text, secrets, where=f"the {view} of {name}")
    return len(scanned)


class LogCapture(logging.Handler):
    """Keeps every record; :meth:`texts` gives each formatted (message, traceback, stack)
    and with every attribute of the record (its ``args`` and extras included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        return [self.format(r) + "\n" + repr(vars(r)) for r in self.records]

    def names(self) -> set[str]:
        return {r.name for r in self.records}


class RecordingEmulator(GatewayEmulator):
    """A ``GatewayEmulator`` that remembers every access token it issues."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.issued: list[str] = []

    def issue_token(self, ttl: float | None = None) -> str:
        token = super().issue_token(ttl)
        self.issued.append(token)
        return token

    def bearer_tokens_sent(self) -> set[str]:
        """Every bearer token a request to this emulator carried."""
        sent = set()
        for request in self.requests:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and value:
                sent.add(value.strip())
        return sent


#: The transports every path runs on.
TRANSPORTS = {"urllib3": gg.Urllib3Transport, "requests": gg.RequestsTransport}
#: Set to DEBUG while scanning (the root logger gets the capturing handler).
LOGGERS = ("", "genesys_gateway", "genesys_gateway.audit", "urllib3", "requests", "http.client")


class Recorder:
    """A transport that keeps every request and response it passes on (to scan them)."""

    def __init__(self, inner: gg.Transport) -> None:
        self.inner = inner
        self.requests: list[gg.HTTPRequest] = []
        self.responses: list[gg.HTTPResponse] = []

    def send(self, request: gg.HTTPRequest) -> gg.HTTPResponse:
        self.requests.append(request)
        response = self.inner.send(request)
        self.responses.append(response)
        return response

    def close(self) -> None:
        self.inner.close()


class Scan:
    """One test's capture of every channel, and the scan of it.

    While active: every logger at DEBUG into one handler on the root logger, warnings
    recorded, stdout/stderr captured (pytest's ``capfd``), spans exported in memory.
    Tests add the errors and objects to scan; :meth:`check` scans everything for
    :attr:`secrets` and the tokens every emulator issued.
    """

    def __init__(self, capfd: Any, spans: Any, transport: str = "urllib3", *, client_id: str,
                 client_secret: str, secrets: Iterable[str], known_tokens: Iterable[str] = ()) -> None:
        self.capfd = capfd
        self.spans = spans
        self.transport_name = transport
        self.client_id = client_id
        self.client_secret = client_secret
        self.secrets = list(secrets)
        self.logs = LogCapture()
        self.warnings: list[warnings.WarningMessage] = []
        self.output = ""
        self.errors: list[tuple[str, BaseException]] = []
        self.objects: list[tuple[str, object, bool]] = []
        self.texts: list[tuple[str, str]] = []
        self.emulators: list[RecordingEmulator] = []
        self.known_tokens = set(known_tokens)  # bearer tokens sent that no emulator issued
        self.counts: dict[str, int] = {}
        self._stack = contextlib.ExitStack()

    # -- setup -----------------------------------------------------------------------------

    def __enter__(self) -> Scan:
        root = logging.getLogger()
        saved = {name: logging.getLogger(name).level for name in LOGGERS}
        saved_disable = logging.root.manager.disable
        logging.disable(logging.NOTSET)
        root.addHandler(self.logs)
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)

        def restore() -> None:
            root.removeHandler(self.logs)
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)
            logging.disable(saved_disable)

        self._stack.callback(restore)
        self.warnings = self._stack.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        if self.spans is not None:
            self.spans.clear()
        self.capfd.readouterr()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def emulator(self, **kwargs: Any) -> RecordingEmulator:
        kwargs.setdefault("client_id", self.client_id)
        kwargs.setdefault("client_secret", self.client_secret)
        em = RecordingEmulator(**kwargs)
        self._stack.enter_context(em)
        self.emulators.append(em)
        return em

    def transport(self) -> gg.Transport:
        transport: gg.Transport = TRANSPORTS[self.transport_name]()
        self._stack.callback(transport.close)
        return transport

    def client(self, em: RecordingEmulator | None = None, *, secret: str | None = None,
               token_url: str | None = None, store: Any = None, **kwargs: Any) -> gg.GatewayClient:
        """A client of ``em`` (or of ``base_url``/``token_url``) with the demo's tools, audit
        payloads, and retries that do not sleep; closed when the scan ends."""
        if "auth" not in kwargs:
            if token_url is None:
                assert em is not None
                token_url = em.token_url
            kwargs["auth"] = gg.ClientCredentials(self.client_id, secret or self.client_secret,
                                                  token_url=token_url, store=store)
        if "base_url" not in kwargs:
            assert em is not None
            kwargs["base_url"] = em.url
        kwargs.setdefault("transport", self.transport())
        kwargs.setdefault("retry", gg.ExponentialBackoff(max_attempts=2, sleep=lambda s: None,
                                                         random=lambda: 1.0))
        kwargs.setdefault("tools", demo.build_registry(latency=0))
        kwargs.setdefault("audit_payloads", True)
        client = gg.GatewayClient(**kwargs)
        self._stack.callback(client.close)
        self.keep("GatewayClient", client)
        return client

    # -- what to scan ------------------------------------------------------------------------

    def expect(self, label: str, error_type: type[BaseException], call: Callable[[], object]) -> BaseException:
        """Run ``call``, which must raise ``error_type``; the error is scanned."""
        with pytest.raises(error_type) as info:
            call()
        self.errors.append((label, info.value))
        # as an application logs it (``logger.exception``): the traceback is scanned too
        logging.getLogger("genesys_gateway.tests").debug("%s raised", label, exc_info=info.value)
        return info.value

    def keep(self, label: str, obj: object, *, carrier: bool = False) -> object:
        self.objects.append((label, obj, carrier))
        return obj

    def text(self, label: str, text: str) -> None:
        self.texts.append((label, text))

    def all_secrets(self) -> list[str]:
        issued = [t for em in self.emulators for t in em.issued]
        return list(dict.fromkeys([*self.secrets, *issued]))

    # -- the scan --------------------------------------------------------------------------

    def check(self) -> dict[str, int]:
        """Scan every channel; returns how many texts were scanned per channel."""
        self.check_tokens_known()
        self.check_output()
        self.check_logs()
        self.check_warnings()
        self.check_spans()
        self.check_errors()
        self.check_objects()
        return self.counts

    def check_tokens_known(self) -> None:
        """Every bearer token sent was issued by an emulator (and so is scanned for)."""
        for em in self.emulators:
            unknown = em.bearer_tokens_sent() - set(em.issued) - self.known_tokens
            assert not unknown, f"bearer tokens sent that no emulator issued: {unknown}"

    def check_output(self) -> None:
        out, err = self.capfd.readouterr()
        self.output += out + err
        assert_no_secret(self.output, self.all_secrets(), where="stdout/stderr")
        self.counts["stdout/stderr"] = len(self.output)
        # http.client prints every header to stdout at debuglevel 1: never turned on
        assert http.client.HTTPConnection.debuglevel == 0

    def check_logs(self) -> None:
        texts = self.logs.texts()
        secrets = self.all_secrets()
        for text in texts:
            assert_no_secret(text, secrets, where="a log record")
        self.counts["log records"] = len(texts)

    def check_warnings(self) -> None:
        for w in self.warnings:
            assert_no_secret(f"{w.category.__name__}: {w.message}", self.all_secrets(), where="a warning")
        self.counts["warnings"] = len(self.warnings)

    def check_spans(self) -> None:
        if self.spans is None:
            return
        finished = self.spans.get_finished_spans()
        for span in finished:
            assert_no_secret(span.to_json(indent=None), self.all_secrets(), where=f"span {span.name}")
        self.counts["spans"] = len(finished)

    def check_errors(self) -> None:
        secrets = self.all_secrets()
        views = 0
        for label, error in self.errors:
            views += assert_views_clean(f"{label}: {type(error).__name__}", error, secrets)
        self.counts["errors"] = len(self.errors)
        self.counts["error views"] = views

    def check_objects(self) -> None:
        secrets = self.all_secrets()
        views = 0
        for label, obj, carrier in self.objects:
            views += assert_views_clean(label, obj, secrets, carrier=carrier)
        for label, text in self.texts:
            assert_no_secret(text, secrets, where=label)
        self.counts["objects"] = len(self.objects)
        self.counts["object views"] = views


def span_exporter() -> Iterator[Any]:
    """An in-memory span exporter on the SDK's tracer provider (``None`` without the SDK);
    a generator for a fixture. The provider is global: it is installed once and kept (as
    ``test_telemetry`` does); the exporter is shut down after use."""
    try:
        import opentelemetry.sdk.trace as sdk
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:  # pragma: no cover - the test extra installs it
        yield None
        return
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):
        provider = sdk.TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        exporter.shutdown()  # keeps nothing of later tests' spans
