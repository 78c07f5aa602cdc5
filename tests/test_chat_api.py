"""``llmskel describe --llm openai:URL[#MODEL]`` against a real HTTP server on 127.0.0.1 (never the network)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmskel.cli import main as cli_main
from llmskel.data.layouts import PART_NAMES
from llmskel.text.chat_api import ChatAPI, parse_chat_spec
from llmskel.text.describe import Describer, LLMError

KEY = "sk-test-0123456789abcdef"

# what the fake server answers, by the body part the request asks about (our own toy sentences)
GOOD = {
    "head": "The head stays upright and faces forward.",
    "hands": "The hands meet in front of the chest and part again.",
    "arms": "The arms bend at the elbows and swing inward.",
    "hips": "The hips stay level while the trunk is upright.",
    "legs": "The legs stay straight with the knees locked.",
    "feet": "The feet stay flat on the ground, shoulder width apart.",
}


class Server:
    """A chat completions endpoint; ``script`` is a list of behaviours used one per request
    ("ok", "bad_json", "401", "500", "slow", "no_choices", "negate"), the last one repeating."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
                what = outer.script[min(len(outer.requests) - 1, len(outer.script) - 1)]
                if what == "slow":
                    time.sleep(1.0)
                    what = "ok"
                if what == "401":
                    return self._send(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
                if what == "500":
                    return self._send(500, {"error": {"message": "overloaded"}})
                if what == "bad_json":
                    return self._send(200, None, b"<html>gateway says hi</html>")
                if what == "no_choices":
                    return self._send(200, {"id": "x", "object": "chat.completion", "choices": []})
                user = body["messages"][-1]["content"]
                m = re.search(r'Start your answer with "(.*\b[Tt]he (head|hands|arms|hips|legs|feet))"', user)
                if "Start your answer with" not in user:  # synonyms: no prefix asked
                    text = "clapping, applauding, hand clap"
                elif m is None:  # the whole-body sentence
                    text = (
                        'When a person performs "clap", the hands meet in front of the chest again and again.'
                    )
                elif what == "ok":
                    text = GOOD[m.group(2)]
                else:  # "negate": the failure SmolLM2 shows
                    text = f'{m.group(1)} do not perform the action "clap".'
                return self._send(200, {"choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": text}}]})  # fmt: skip

            def _send(self, code, obj, raw=None):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(monkeypatch):
    monkeypatch.setenv("LLMSKEL_LLM_API_KEY", KEY)
    servers = []

    def start(*script):
        s = Server(script)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def test_spec_parsing():
    assert parse_chat_spec("openai:http://h:1/v1#m") == ("http://h:1/v1/chat/completions", "m")
    assert parse_chat_spec("openai:http://h:1/v1/chat/completions/") == (
        "http://h:1/v1/chat/completions",
        None,
    )
    with pytest.raises(LLMError, match="http"):
        parse_chat_spec("openai:h:1/v1")


def test_describe_through_a_chat_server(serve, tmp_path, caplog):
    server = serve("ok")
    caplog.set_level(logging.DEBUG)
    d = Describer(f"openai:{server.url}#tiny-chat", cache=tmp_path / "cache.json", progress=False, retries=0)
    report = d.describe(["clap"])
    assert report.failed == {}
    desc = report.descriptions["clap"]
    assert desc.parts["hand"] == [GOOD["hands"]] and desc.parts["foot"] == [GOOD["feet"]]
    assert desc.synonyms == ["clapping", "applauding", "hand clap"]
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == f"Bearer {KEY}"
    assert first["body"]["model"] == "tiny-chat" and first["body"]["temperature"] == 0.0
    assert [m["role"] for m in first["body"]["messages"]] == ["system", "user"]
    assert len(server.requests) == len(PART_NAMES) + 2
    out = report.descriptions.save(tmp_path / "d.json")
    # the key is never written anywhere
    for path in (out, tmp_path / "cache.json"):
        assert KEY not in path.read_text()
    assert KEY not in caplog.text
    assert report.descriptions.header["model"] == f"openai:{server.url}/chat/completions#tiny-chat"
    # a second run is answered from the cache: no request
    n = len(server.requests)
    again = Describer(
        f"openai:{server.url}#tiny-chat", cache=tmp_path / "cache.json", progress=False
    ).describe(["clap"])
    assert len(server.requests) == n and again.from_cache == len(PART_NAMES) + 2


def test_bad_json_is_a_clear_error(serve):
    server = serve("bad_json")
    with pytest.raises(LLMError, match=r"malformed response: not JSON.*gateway says hi"):
        ChatAPI(f"openai:{server.url}", backoff=0).complete([{"role": "user", "content": "hi"}], 8)


def test_missing_choices_is_a_clear_error(serve):
    server = serve("no_choices")
    with pytest.raises(LLMError, match=r"malformed response: no choices\[0\]\.message\.content"):
        ChatAPI(f"openai:{server.url}", backoff=0).complete([{"role": "user", "content": "hi"}], 8)


def test_401_is_not_retried_and_the_key_is_not_shown(serve):
    server = serve("401")
    with pytest.raises(LLMError) as e:
        ChatAPI(f"openai:{server.url}", backoff=0).complete([{"role": "user", "content": "hi"}], 8)
    msg = str(e.value)
    assert "HTTP 401" in msg and "LLMSKEL_LLM_API_KEY" in msg and server.url in msg
    assert KEY not in msg and "***" in msg  # the server echoed the key: redacted
    assert len(server.requests) == 1


def test_500_then_success_is_retried(serve, caplog):
    server = serve("500", "500", "ok")
    api = ChatAPI(f"openai:{server.url}", backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="llmskel.text.chat_api"):
        text, finished = api.complete([{"role": "user", "content": 'Start your answer with "The head".'}], 16)
    assert text == GOOD["head"] and finished
    assert len(server.requests) == 3 and "HTTP 500" in caplog.text and "overloaded" in caplog.text


def test_500_forever_gives_up(serve):
    server = serve("500")
    with pytest.raises(LLMError, match=r"gave up after 3 attempts: HTTP 500"):
        ChatAPI(f"openai:{server.url}", backoff=0, max_retries=2).complete(
            [{"role": "user", "content": "x"}], 8
        )
    assert len(server.requests) == 3


def test_timeout_is_retried_then_reported(serve):
    server = serve("slow")
    t = time.perf_counter()
    with pytest.raises(LLMError, match=r"no answer within 0.2 s \(timeout\)"):
        ChatAPI(f"openai:{server.url}", timeout=0.2, backoff=0, max_retries=1).complete(
            [{"role": "user", "content": "x"}], 8
        )
    assert len(server.requests) == 2 and time.perf_counter() - t < 5


def test_unreachable_server():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(LLMError, match="cannot connect"):
        ChatAPI(f"openai:http://127.0.0.1:{port}/v1", backoff=0, max_retries=0).complete(
            [{"role": "user", "content": "x"}], 8
        )


def test_cli_reports_unusable_answers_per_part(serve, tmp_path, capsys):
    server = serve("negate")
    labels = tmp_path / "labels.txt"
    labels.write_text("clap\n")
    out = tmp_path / "d.json"
    rc = cli_main(["describe", "--labels", str(labels), "--llm", f"openai:{server.url}#m", "--out", str(out),
                   "--retries", "1", "--no-cache"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 1 and not out.exists()
    assert (
        "FAILED 'clap'" in text and "hand: negates the action" in text and "foot: negates the action" in text
    )
    # a retry is sampled with a seed
    assert any(r["body"].get("seed") is not None for r in server.requests)
