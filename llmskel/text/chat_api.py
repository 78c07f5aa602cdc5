"""An OpenAI-compatible chat completions backend for ``llmskel describe`` (``--llm openai:URL[#MODEL]``).

Most people run a strong LLM behind this API: a hosted service, or a local llama.cpp, vLLM or Ollama
server. Only the standard library is used (``urllib``).

The endpoint
    ``URL`` is the API base, as OpenAI clients call it (``base_url``): requests go to
    ``POST {URL}/chat/completions``. So write the base with its version path:
    ``openai:https://api.openai.com/v1#gpt-4o-mini``, ``openai:http://127.0.0.1:8080/v1`` (llama.cpp),
    ``openai:http://127.0.0.1:11434/v1#llama3.2`` (Ollama). A URL that already ends with
    ``/chat/completions`` is used as given. ``#MODEL`` is sent as ``model``; without it no ``model``
    field is sent (single-model local servers accept that; hosted APIs answer 400 and the error says so).

The key
    From the environment: ``LLMSKEL_LLM_API_KEY``, else ``OPENAI_API_KEY``; sent as a bearer token and
    never written to a file, a log line or an error message (a server that echoes it back has it
    replaced by ``***``). No key: no ``Authorization`` header (local servers rarely want one).

Failures
    Every request has a timeout. HTTP 429 and 5xx, timeouts and dropped connections are retried with
    exponential backoff (``Retry-After`` honoured up to 60 s); 401/403 and other 4xx answers, a server
    that cannot be reached, and a response that is not the chat completions JSON are a
    :class:`~llmskel.text.describe.LLMError` naming the URL and the problem.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

SCHEME = "openai:"
KEY_VARIABLES = ("LLMSKEL_LLM_API_KEY", "OPENAI_API_KEY")
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def is_chat_api(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(SCHEME)


def parse_chat_spec(spec: str) -> tuple[str, str | None]:
    """``openai:URL[#MODEL]`` -> (endpoint URL ending in /chat/completions, model or None)."""
    from .describe import LLMError

    rest = spec[len(SCHEME) :] if spec.startswith(SCHEME) else spec
    url, _, model = rest.partition("#")
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise LLMError(
            f"--llm {spec!r}: expected openai:URL[#MODEL] with an http(s) URL, for example "
            "openai:http://127.0.0.1:8080/v1 or openai:https://api.openai.com/v1#gpt-4o-mini"
        )
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"
    return url, (model.strip() or None)


def api_key() -> str | None:
    for name in KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class ChatAPI:
    """Sends chat requests to one OpenAI-compatible endpoint; answers as :class:`Generation`."""

    def __init__(self, spec: str, timeout: float = 60.0, max_retries: int = 4, backoff: float = 1.0):
        self.spec = spec
        self.url, self.model = parse_chat_spec(spec)
        self.timeout, self.max_retries, self.backoff = float(timeout), int(max_retries), float(backoff)
        self.requests = 0  # HTTP requests sent (tests count them)

    @property
    def model_id(self) -> str:
        """What the answer cache is keyed by (the URL and model, never the key)."""
        return f"openai:{self.url}" + (f"#{self.model}" if self.model else "")

    def _redact(self, text: str) -> str:
        key = api_key()
        return text.replace(key, "***") if key else text

    def _fail(self, problem: str):
        from .describe import LLMError

        return LLMError(self._redact(f"chat API {self.url}: {problem}"))

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last, retry_after = "no attempt", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, 60.0))
                logger.warning("chat API %s: %s; retrying in %.1f s (%d of %d)", self.url, last, delay, attempt,
                               self.max_retries)  # fmt: skip
                time.sleep(delay)
            retry_after = None
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            self.requests += 1
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as e:
                detail = _error_detail(e)
                if e.code in RETRY_STATUS:
                    last = f"HTTP {e.code}{detail}"
                    ra = e.headers.get("Retry-After") if e.headers else None
                    retry_after = float(ra) if ra and ra.strip().replace(".", "", 1).isdigit() else None
                    continue
                if e.code in (401, 403):
                    raise self._fail(
                        f"HTTP {e.code}: authentication refused{detail}. Set the key in the environment "
                        f"({' or '.join(KEY_VARIABLES)})" + ("" if api_key() else "; none is set now")
                    ) from None
                if e.code == 404:
                    raise self._fail(f"HTTP 404: no such endpoint or model{detail} (the URL must be the API base, "
                                     "e.g. http://host:port/v1; llmskel appends /chat/completions)") from None  # fmt: skip
                raise self._fail(f"HTTP {e.code}{detail}") from None
            except TimeoutError:
                last = f"no answer within {self.timeout:g} s (timeout)"
                continue
            except urllib.error.URLError as e:
                reason = e.reason
                if isinstance(reason, TimeoutError):
                    last = f"no answer within {self.timeout:g} s (timeout)"
                    continue
                if isinstance(reason, ConnectionResetError):
                    last = f"connection reset ({reason})"
                    continue
                raise self._fail(f"cannot connect ({reason})") from None
            except (ConnectionResetError, ConnectionAbortedError, http_client_errors()) as e:
                last = f"connection dropped ({type(e).__name__}: {e})"
                continue
            try:
                return json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise self._fail(f"malformed response: not JSON ({e}): {_snippet(raw)}") from None
        raise self._fail(f"gave up after {self.max_retries + 1} attempts: {last}")

    def complete(self, messages: list[dict[str, str]], max_tokens: int, sample: bool = False,
                 seed: int | None = None, temperature: float = 0.8, top_p: float = 0.95) -> tuple[str, bool]:  # fmt: skip
        """(answer text, finished) for one chat; ``finished`` is False when the token limit cut it."""
        payload: dict[str, Any] = {"messages": messages, "max_tokens": int(max_tokens), "n": 1}
        if self.model:
            payload["model"] = self.model
        if sample:
            payload.update(temperature=temperature, top_p=top_p)
            if seed is not None:
                payload["seed"] = int(seed)
        else:
            payload["temperature"] = 0.0
        data = self._post(payload)
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            if isinstance(data, dict) and "error" in data:
                raise self._fail(
                    f"the server answered with an error: {_snippet(json.dumps(data['error']))}"
                ) from None
            raise self._fail(
                f"malformed response: no choices[0].message.content in {_snippet(json.dumps(data))}"
            ) from None
        if not isinstance(content, str):
            raise self._fail(f"malformed response: message content is {type(content).__name__}, not text")
        return content, choice.get("finish_reason") != "length"

    def generate(self, rendered: Sequence[dict[str, str]], max_new_tokens: int, sample: bool = False,
                 seed: int | None = None) -> list:  # fmt: skip
        """One :class:`~llmskel.text.describe.Generation` per rendered template (system, user,
        answer_prefix). Chat APIs cannot be made to continue a prefix, so the request asks for an
        answer that starts with it; the returned text is the whole answer (``includes_prefix``)."""
        from .describe import Generation

        out = []
        for i, r in enumerate(rendered):
            user = r["user"]
            prefix = r.get("answer_prefix", "").strip()
            if prefix:
                user += f'\nStart your answer with "{prefix}".'
            messages = [{"role": "user", "content": user}]
            if r.get("system"):
                messages.insert(0, {"role": "system", "content": r["system"]})
            text, finished = self.complete(
                messages, max_new_tokens, sample, None if seed is None else seed + i
            )
            out.append(Generation(text.strip(), finished, None, includes_prefix=True))
        return out


def http_client_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def _snippet(raw: bytes | str, n: int = 200) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return repr(text[:n] + ("..." if len(text) > n else ""))


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        raw = e.read()
    except Exception:  # noqa: BLE001 - the body is only a hint
        return ""
    if not raw:
        return ""
    try:
        data = json.loads(raw)
        msg = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(msg, dict):
            msg = msg.get("message", msg)
        return f" ({_snippet(str(msg))[1:-1]})"
    except (ValueError, AttributeError):
        return f" ({_snippet(raw)[1:-1]})"
