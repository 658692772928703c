"""The model client against a real HTTP server on 127.0.0.1 that speaks chat completions."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai")

from stepstone.llm import (  # noqa: E402
    BudgetExhausted,
    Cache,
    ChatClient,
    Halted,
    LLMError,
    ModelUnavailable,
    remote,
)


class FakeModel:
    """What the server does: fail the first ``failures`` requests, answer the next ones with
    the ``faults`` queued (a status code, optionally with a Retry-After; "html": a body that
    is not JSON; "empty": no choices), sleep, then reply ``reply``, or ``script(user_message)``
    when a script is set (a scripted fake model); with ``bad_json`` the body is never JSON;
    with ``structured`` False a request with ``response_format`` is refused (400)."""

    def __init__(self):
        self.requests = 0
        self.failures = 0
        self.faults: list = []  # e.g. [(429, "2"), 503, "html", "empty"]
        self.structured = True
        self.formats: list = []  # the response_format of each request answered
        self.conversations: list = []  # the messages of each request answered
        self.delay = 0.0
        self.reply = "go north"
        self.script = None
        self.bad_json = False
        self.models = ["tiny"]
        self.asked: list[str] = []  # the user messages received, in order
        self.sampling: list[tuple] = []  # (temperature, seed) of each request
        self.keys: set[str] = set()  # the Authorization headers seen
        self.lock = threading.Lock()


def serve(model: FakeModel):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            listed = [{"id": m, "object": "model"} for m in model.models]
            self._json(200, {"object": "list", "data": listed})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with model.lock:
                model.requests += 1
                failing = model.failures > 0
                model.failures -= failing
                fault = model.faults.pop(0) if model.faults and not failing else None
            if failing:
                return self._json(503, {"error": {"message": "overloaded"}})
            if "response_format" in body and not model.structured:
                return self._json(400, {"error": {"message": "response_format not supported"}})
            if isinstance(fault, int | tuple):
                code, wait = fault if isinstance(fault, tuple) else (fault, None)
                data = json.dumps({"error": {"message": "busy"}}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if wait is not None:
                    self.send_header("Retry-After", wait)
                self.end_headers()
                self.wfile.write(data)
                return
            if fault == "empty":
                return self._json(200, {"id": "x", "object": "chat.completion", "created": 0,
                                        "model": body["model"], "choices": []})  # fmt: skip
            if body["model"] not in model.models:
                return self._json(404, {"error": {"message": f"model {body['model']} not found"}})
            time.sleep(model.delay)
            if model.bad_json or fault == "html":
                data = b"<html>not a chat completion{"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            user = body["messages"][-1]["content"]
            with model.lock:
                model.asked.append(user)
                model.sampling.append((body.get("temperature"), body.get("seed")))
                model.formats.append(body.get("response_format"))
                model.conversations.append(body["messages"])
                model.keys.add(self.headers.get("Authorization", ""))
                # under the lock: a script may read this request's sampling[-1]
                content = model.script(user) if model.script else model.reply
            self._json(200, {
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
            })  # fmt: skip

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            pass  # a client that timed out closed its socket: expected here

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


@pytest.fixture(autouse=True)
def pauses(monkeypatch):
    """The pauses between attempts, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(remote, "sleep", slept.append)
    return slept


@pytest.fixture
def endpoint():
    model = FakeModel()
    server, url = serve(model)
    yield model, url
    server.shutdown()


ASK = [{"role": "user", "content": "You are in a kitchen. Commands: go north, look"}]


def test_reply_usage_and_cache_that_survives_a_new_client(endpoint, tmp_path):
    model, url = endpoint
    client = ChatClient(url, "tiny", cache=Cache(tmp_path / "llm.sqlite"))
    assert client.chat(ASK) == "go north"
    assert client.chat(ASK) == "go north"
    assert model.requests == 1 and client.usage.calls == 1 and client.usage.cached == 1
    assert client.usage.prompt_tokens == 11 and client.usage.completion_tokens == 2
    again = ChatClient(url, "tiny", cache=Cache(tmp_path / "llm.sqlite"))  # a resumed run
    model.reply = "something else"
    assert again.chat(ASK) == "go north" and model.requests == 1


def test_transient_errors_are_retried_with_backoff_and_retry_after(endpoint, pauses):
    """429 with Retry-After, 503, a 200 whose body is HTML, a 500 and a completion without
    choices: each retried, the server's Retry-After obeyed, otherwise exponential backoff with
    jitter in [half, all] of 1, 2, 4, 8 s (backoff=1)."""
    model, url = endpoint
    model.faults = [(429, "3"), 503, "html", 500, "empty"]
    client = ChatClient(url, "tiny", max_retries=8)
    assert client.chat(ASK) == "go north"
    assert model.requests == 6
    assert pauses[0] == 3.0
    for k, wait in enumerate(pauses[1:], start=1):
        assert 2**k / 2 <= wait <= 2**k
    assert client.usage.calls == 1


def test_a_model_that_stays_down_is_one_error_naming_the_server(endpoint, pauses):
    model, url = endpoint
    model.failures = 10
    with pytest.raises(ModelUnavailable, match=r"127\.0\.0\.1.*answered 503.*3 attempts"):
        ChatClient(url, "tiny", max_retries=2).chat(ASK)
    assert model.requests == 3 and len(pauses) == 2
    model.failures = 0
    model.faults = [(429, "30000")]  # a wait longer than any run should sit through
    assert ChatClient(url, "tiny").chat(ASK) == "go north"
    assert pauses[-1] == remote.MAX_WAIT


def test_credentials_in_the_url_never_show(endpoint):
    model, url = endpoint
    secret = url.replace("http://", "http://user:sk-in-url@")
    model.failures = 10
    with pytest.raises(ModelUnavailable) as e:
        ChatClient(secret, "tiny", max_retries=0).chat(ASK)
    assert "sk-in-url" not in str(e.value) and "127.0.0.1" in str(e.value)
    assert remote.redact(secret) == url


def test_only_replies_the_role_could_read_are_cached(endpoint, tmp_path):
    model, url = endpoint
    client = ChatClient(url, "tiny", cache=Cache(tmp_path / "c"))
    model.reply = "let me think about it"
    readable = lambda r: r.startswith("go")  # noqa: E731
    assert client.chat(ASK, readable) == "let me think about it"
    model.reply = "go north"
    assert client.chat(ASK, readable) == "go north"  # asked again: the first was unreadable
    assert client.chat(ASK, readable) == "go north"  # now from the cache
    assert model.requests == 2 and client.usage.cached == 1


def test_identical_requests_in_flight_are_asked_once(endpoint, tmp_path):
    """Threads of one client, and two clients on one cache file (a worker process and the
    driver), asking the same prompt while it is in flight share one request."""
    model, url = endpoint
    model.delay = 0.5
    path = tmp_path / "c"
    one, two = (
        ChatClient(url, "tiny", cache=Cache(path)),
        ChatClient(url, "tiny", cache=Cache(path)),
    )
    same = [{"role": "user", "content": "same"}]
    results = []
    threads = [threading.Thread(target=lambda c=c: results.append(c.chat(same)))
               for c in (one, one, two, two)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["go north"] * 4 and model.requests == 1
    assert one.totals()["llm_calls"] == 1


def test_a_server_without_structured_output_is_asked_plainly(endpoint):
    model, url = endpoint
    model.structured = False
    client = ChatClient(url, "tiny")
    schema = {"type": "json_object"}
    assert client.chat(ASK, response_format=schema) == "go north"
    assert client.chat([{"role": "user", "content": "b"}], response_format=schema) == "go north"
    assert model.requests == 3 and model.formats == [None, None]  # refused once, then plain
    model.structured = True
    fresh = ChatClient(url, "tiny")
    fresh.chat([{"role": "user", "content": "c"}], response_format=schema)
    assert model.formats[-1] == schema


def test_a_halted_run_asks_nothing_in_any_process(endpoint, tmp_path):
    model, url = endpoint
    path = tmp_path / "c"
    driver, worker = (
        ChatClient(url, "tiny", cache=Cache(path)),
        ChatClient(url, "tiny", cache=Cache(path)),
    )
    worker.chat(ASK)
    driver.halt()
    assert worker.chat(ASK) == "go north"  # cached answers are still given
    with pytest.raises(Halted):
        worker.chat([{"role": "user", "content": "new"}])
    orphan = [{"role": "user", "content": "asked by a process that was killed"}]
    Cache(path).claim(driver.key(orphan, {}), stale=1e9)
    driver.halt(False)  # resumed: nothing of the killed session is in flight any more
    worker.chat([{"role": "user", "content": "new"}])
    assert worker.chat(orphan) == "go north"
    assert model.requests == 3 and "halted" not in driver.totals()


def test_timeout_is_an_error_not_a_hang(endpoint):
    model, url = endpoint
    model.delay = 3.0
    start = time.monotonic()
    with pytest.raises(LLMError, match="did not answer in time"):
        ChatClient(url, "tiny", timeout=0.5, max_retries=0).chat(ASK)
    assert time.monotonic() - start < 2.5


def test_refused_connection_and_unknown_model(endpoint):
    _, url = endpoint
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # bound, not listening
    with pytest.raises(LLMError, match="cannot reach a model endpoint"):
        ChatClient(closed, "tiny", max_retries=0).chat(ASK)
    with pytest.raises(LLMError, match="no model 'huge'.*serves: tiny"):
        ChatClient(url, "huge", max_retries=0).chat(ASK)


def test_budget_of_calls_and_concurrency(endpoint, tmp_path):
    model, url = endpoint
    model.delay = 0.2
    client = ChatClient(url, "tiny", max_calls=4, max_concurrency=4, cache=Cache(tmp_path / "c"))
    asks = [[{"role": "user", "content": f"state {i}"}] for i in range(4)]
    start = time.monotonic()
    assert client.chat_many(asks) == ["go north"] * 4
    assert time.monotonic() - start < 0.7  # four at once, not one after another
    with pytest.raises(BudgetExhausted, match="budget of 4 model calls"):
        client.chat([{"role": "user", "content": "state 5"}])
    assert client.chat(asks[0]) == "go north"  # cached answers stay free
    assert model.requests == 4


def test_missing_endpoint_is_explained(monkeypatch):
    monkeypatch.delenv("STEPSTONE_LLM_URL", raising=False)
    with pytest.raises(LLMError, match="--llm-url"):
        ChatClient(model="tiny")


def test_export_labels_trajectories_with_the_model(endpoint, tmp_path, capsys):
    """Retrospective labels by a model: each trajectory's transcript in, one instruction out."""
    from stepstone.cli import main

    model, url = endpoint
    model.reply = "  Turn 4 7 8 8 into   the number shown. "
    run = tmp_path / "run"
    explore = ["explore", "game24:4,7,8,8", "--frames", "300", "--workers", "1"]
    assert main([*explore, "--run-dir", str(run), "--no-progress"]) == 0
    out = tmp_path / "labelled.jsonl"
    argv = ["export", str(run), "--format", "jsonl", "--select", "top-k", "--k", "5"]
    argv += ["--out", str(out), "--llm-url", url, "--llm-model", "tiny"]
    assert main(argv) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 5 and model.requests == 5
    assert all(r["label"] == "Turn 4 7 8 8 into the number shown." for r in rows)
    assert all(r["rule_label"].startswith("Use 4 7 8 8") for r in rows)
    again = [*argv, "--overwrite"]  # the file exists now
    assert main(again) == 0 and model.requests == 5  # asked again: answered from the cache


def test_a_body_that_is_never_json_is_a_clear_error(endpoint):
    model, url = endpoint
    model.bad_json = True
    with pytest.raises(ModelUnavailable, match="did not answer with a chat completion"):
        ChatClient(url, "tiny", max_retries=1).chat(ASK)


def test_budget_and_accounting_are_shared_through_the_cache_file(endpoint, tmp_path):
    """Two clients on one cache file (a driver and a worker process, or a run and its
    resumption) share one budget and one ledger."""
    model, url = endpoint
    path = tmp_path / "llm.sqlite"
    first = ChatClient(url, "tiny", cache=Cache(path), max_calls=3)
    second = ChatClient(url, "tiny", cache=Cache(path), max_calls=3)
    first.chat([{"role": "user", "content": "a"}])
    second.chat([{"role": "user", "content": "b"}])
    first.chat([{"role": "user", "content": "c"}])
    with pytest.raises(BudgetExhausted):
        second.chat([{"role": "user", "content": "d"}])
    second.chat([{"role": "user", "content": "a"}])  # cached: free
    second.count("llm_act_fallbacks", 2)
    assert model.requests == 3
    totals = first.totals()
    assert totals["llm_calls"] == 3 and totals["llm_cached"] == 1
    assert totals["llm_prompt_tokens"] == 33 and totals["llm_act_fallbacks"] == 2
    larger = ChatClient(url, "tiny", cache=Cache(path), max_calls=4)  # resumed, larger budget
    larger.chat([{"role": "user", "content": "d"}])
    with pytest.raises(BudgetExhausted):
        larger.chat([{"role": "user", "content": "e"}])
    assert model.requests == 4


def test_settings_read_the_environment_and_check_the_endpoint(endpoint, monkeypatch):
    from stepstone.llm import Settings

    _, url = endpoint
    monkeypatch.setenv("STEPSTONE_LLM_URL", url)
    monkeypatch.setenv("STEPSTONE_LLM_MODEL", "tiny")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    s = Settings().resolved()
    assert (s.url, s.model, s.key) == (url, "tiny", "sk-test")
    assert "sk-test" not in repr(s)  # the key never shows up in logs
    assert Settings(model="other").resolved().model == "other"  # options win
    s.check()
    with pytest.raises(LLMError, match="no model 'huge'; it serves: tiny"):
        Settings(url, "huge").check()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    start = time.monotonic()
    with pytest.raises(LLMError, match="cannot reach a model endpoint"):
        Settings(closed, "tiny").check()
    assert time.monotonic() - start < 10
    with pytest.raises(LLMError, match="no model directory"):
        Settings("local:/nonexistent/model", "x").check()
