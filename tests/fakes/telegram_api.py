"""A fake Telegram Bot API server on 127.0.0.1 for tests of the Telegram process.

Telegram's servers are unreachable from the test machines, and a mock of python-telegram-bot (PTB)
would hide the parts that break in production (HTTP, JSON shapes, polling, error mapping). So the
real PTB talks HTTP to this server: ``Application.builder().token(T).base_url(fake.base_url)``.
Requests arrive as ``POST /bot<token>/<method>`` (PTB sends form-encoded fields whose non-string
values are JSON; JSON bodies and GET query strings are accepted too) and are answered like the
Bot API: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N, "description": ...}``.

Faults a test can inject: ``fail_next`` (an error answer, 429 with ``retry_after`` by default) and
``set_unreachable`` (HTTP 502 Bad Gateway for every request, which PTB raises as NetworkError).

Standalone: ``python -m tests.fakes.telegram_api --port N --token T [--record FILE]`` prints its
base URL and serves until killed; ``--record`` appends every sent or edited message as a JSON line
(read it back with ``read_recorded``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlsplit

JSONDict = dict[str, Any]
T = TypeVar("T")

MAX_TEXT_LENGTH = 4096  # Telegram counts after entity parsing; the fake counts the raw text (stricter).
MAX_CALLBACK_DATA_BYTES = 64
UPDATE_TYPES = ("message", "callback_query")
PARSE_MODES = frozenset({"HTML", "Markdown", "MarkdownV2"})
# PTB sends these form fields as plain strings; every other form field holds a JSON-encoded value.
_STRING_FIELDS = frozenset({"text", "parse_mode", "callback_query_id", "url", "language_code"})
_HTML_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
                        "a", "code", "pre", "blockquote", "tg-emoji"})
_TAG_RE = re.compile(r"<(/?)([a-zA-Z-]*)([^<>]*)>")
_PATH_RE = re.compile(r"^/bot([^/]+)/([A-Za-z0-9_]+)$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup "
                 "are exactly the same as a current content and reply markup of the message")


@dataclass(frozen=True)
class SentMessage:
    """One message the bot sent (``sendMessage``) or changed (``editMessage*``): what tests assert on."""

    method: str
    chat_id: int | str
    message_id: int
    text: str  # after an edit: the message's whole text; as sent, markup included
    parse_mode: str | None
    reply_markup: JSONDict | None
    received_at: float  # time.time() when the request arrived

    def button_data(self) -> list[str]:
        """The callback_data of every inline button, row by row, so tests can press one."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


class LoggedRequest(NamedTuple):
    """One Bot API request as received (method name, decoded parameters), faults included."""

    method: str
    params: JSONDict


class ApiError(Exception):
    """A Bot API error answer; raised by a method handler and sent as ``{"ok": false, ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


def _injected_error(code: int, retry_after: int) -> ApiError:
    if code == 429:
        return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
    reasons = {400: "Bad Request: injected by fail_next", 403: "Forbidden: bot was blocked by the user"}
    return ApiError(code, reasons.get(code, HTTPStatus(code).phrase))


def _html_error(text: str) -> str | None:
    """Why Telegram would refuse ``text`` with parse_mode HTML (a bare '<', an unknown or unbalanced tag)."""
    open_tags: list[str] = []
    start = text.find("<")
    while start != -1:
        offset = len(text[:start].encode())
        tag = _TAG_RE.match(text, start)
        if tag is None:
            return f"Unclosed start tag at byte offset {offset}"
        name = tag.group(2).lower()
        if tag.group(1):
            if not open_tags or open_tags[-1] != name:
                expected = f'"</{open_tags[-1]}>"' if open_tags else "no end tag"
                return f'Unmatched end tag at byte offset {offset}, expected {expected}, found "</{name}>"'
            open_tags.pop()
        elif name not in _HTML_TAGS:
            return f'Unsupported start tag "{name}" at byte offset {offset}'
        else:
            open_tags.append(name)
        start = text.find("<", tag.end())
    return f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"' if open_tags else None


def _int_param(params: JSONDict, name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad_request(f"{name} must be an integer, got {value!r}") from None


def _decode_form(pairs: list[tuple[str, str]]) -> JSONDict:
    params: JSONDict = {}
    for key, raw in pairs:
        try:
            params[key] = raw if key in _STRING_FIELDS else json.loads(raw)
        except ValueError:
            params[key] = raw  # e.g. chat_id "@channel"
    return params


def read_recorded(path: str | Path) -> list[SentMessage]:
    """The messages a standalone fake started with ``--record path`` has received so far."""
    file = Path(path)
    if not file.exists():
        return []
    return [SentMessage(**json.loads(line)) for line in file.read_text().splitlines() if line.strip()]


class FakeTelegramServer:
    """The fake Bot API: an HTTP server in a background thread plus a control API for tests.

    Thread-safe: one condition variable guards all state, and every change notifies it, so long polls
    and ``wait_for_*`` wake as soon as something happens instead of sleeping.
    """

    def __init__(self, token: str, host: str = "127.0.0.1", port: int = 0, *,
                 bot_username: str = "fake_test_bot", record_path: str | Path | None = None) -> None:
        if not token or "/" in token:
            raise ValueError(f"token must be non-empty and contain no '/', got {token!r}")
        self.token, self.host = token, host
        self._requested_port = port
        self._record_path = Path(record_path) if record_path is not None else None
        prefix = token.split(":", 1)[0]
        self._bot_user: JSONDict = {"id": int(prefix) if prefix.isdigit() else 1, "is_bot": True,
                                    "first_name": "Fake Test Bot", "username": bot_username,
                                    "can_join_groups": True, "can_read_all_group_messages": False,
                                    "supports_inline_queries": False}
        self._cond = threading.Condition(threading.RLock())
        self._updates: list[JSONDict] = []
        self._next_update_id = 1
        self._next_message_id = 1
        self._bot_messages: dict[int, JSONDict] = {}  # message_id -> Message object as Telegram stores it
        self._sent: list[SentMessage] = []
        self._requests: list[LoggedRequest] = []
        self._faults: dict[str, list[ApiError]] = {}
        self._unreachable_until = 0.0
        self._allowed_updates: list[str] = list(UPDATE_TYPES)
        self._open_callback_ids: set[str] = set()
        self._commands: dict[str, list[JSONDict]] = {}
        self._stopping = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._methods: dict[str, tuple[str, Callable[[JSONDict], Any]]] = {
            name.lower(): (name, handler) for name, handler in [
                ("getMe", lambda _: self._bot_user), ("getUpdates", self._get_updates),
                ("sendMessage", self._send_message), ("editMessageText", self._edit_message_text),
                ("editMessageReplyMarkup", self._edit_message_reply_markup),
                ("answerCallbackQuery", self._answer_callback_query), ("deleteWebhook", self._delete_webhook),
                ("setMyCommands", self._set_my_commands), ("getMyCommands", self._get_my_commands),
                ("deleteMyCommands", self._delete_my_commands), ("close", lambda _: True),
                ("logOut", lambda _: True)]}

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeTelegramServer:
        """Bind and serve in a daemon thread; returns self so ``fake = FakeTelegramServer(...).start()``."""
        if self._httpd is not None:
            raise RuntimeError("FakeTelegramServer is already started")
        self._stopping = False
        if self._record_path is not None:
            self._record_path.touch()  # fail here, not inside a request, if the path is not writable
        self._httpd = ThreadingHTTPServer((self.host, self._requested_port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-telegram-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Answer pending long polls, stop serving and close every client connection."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._cond:
            for conn in self._connections:
                with contextlib.suppress(OSError):  # the client may have closed it already
                    conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeTelegramServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (the OS picks one when constructed with port=0)."""
        if self._httpd is None:
            raise RuntimeError("FakeTelegramServer is not started; call start() first")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The value for PTB's ``base_url`` (PTB appends the token)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """The value for PTB's ``base_file_url``; file downloads are not served (404)."""
        return f"http://{self.host}:{self.port}/file/bot"

    # ---- control API: what users do ---------------------------------------------------------------
    def push_message(self, text: str, user_id: int, chat_id: int | None = None,
                     username: str | None = None) -> JSONDict:
        """Queue a message update from a user, as Telegram would deliver it; returns the Update.

        A text starting with '/' carries a bot_command entity over its first word, as Telegram sends it.
        Without ``chat_id`` the message comes from the user's private chat with the bot.
        """
        if not isinstance(text, str) or not text:
            raise ValueError(f"push_message: text must be a non-empty str, got {text!r}")
        user = self._user(user_id, username)
        with self._cond:
            message: JSONDict = {"message_id": self._take_message_id(), "from": user,
                                 "chat": self._chat(user_id if chat_id is None else chat_id, user),
                                 "date": int(time.time()), "text": text}
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(command.encode("utf-16-le")) // 2}]
            return self._push_update({"message": message})

    def push_callback(self, data: str, user_id: int, message_id: int | None = None,
                      username: str | None = None) -> JSONDict:
        """Queue a callback_query, as when the user presses an inline button; returns the Update.

        ``message_id`` names the bot message carrying the button (default: the bot's latest message).
        """
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise ValueError(f"push_callback: data must be 1-{MAX_CALLBACK_DATA_BYTES} bytes, got {data!r}")
        user = self._user(user_id, username)
        with self._cond:
            if message_id is None:
                if not self._bot_messages:
                    raise ValueError("push_callback: the bot has sent no message yet to carry the button")
                message_id = max(self._bot_messages)
            message = self._bot_messages.get(message_id)
            if message is None:
                raise ValueError(f"push_callback: the bot sent no message with message_id={message_id}; "
                                 f"sent ids: {sorted(self._bot_messages)}")
            query_id = f"{self._next_update_id}{user_id}"
            self._open_callback_ids.add(query_id)
            query = {"id": query_id, "from": user, "message": json.loads(json.dumps(message)),
                     "chat_instance": str(abs(hash(str(message["chat"]["id"])))), "data": data}
            return self._push_update({"callback_query": query})

    # ---- control API: what the bot did ------------------------------------------------------------
    def sent_messages(self) -> list[SentMessage]:
        """Every message the bot sent or edited, in order of arrival."""
        with self._cond:
            return list(self._sent)

    def requests_log(self) -> list[LoggedRequest]:
        """Every request received, in order, including refused ones (wrong token, faults, unknown)."""
        with self._cond:
            return list(self._requests)

    def wait_for_message(self, predicate: Callable[[SentMessage], bool], timeout: float = 5.0, *,
                         start: int = 0) -> SentMessage:
        """The first sent message (from index ``start``) matching ``predicate``, waiting up to ``timeout``.

        Raises AssertionError listing everything received when nothing matches in time.
        """
        return self._wait_for(self._sent, predicate, timeout, start, "sent message")

    def wait_for_request(self, method: str, timeout: float = 5.0, *, start: int = 0,
                         predicate: Callable[[LoggedRequest], bool] = lambda _: True) -> LoggedRequest:
        """The first request (from index ``start``) to ``method`` matching ``predicate``, within timeout."""
        return self._wait_for(self._requests, lambda r: r.method == method and predicate(r), timeout, start,
                              f"{method} request")

    # ---- control API: faults ----------------------------------------------------------------------
    def fail_next(self, method: str, count: int = 1, error_code: int = 429, retry_after: int = 1) -> None:
        """Answer the next ``count`` calls of ``method`` with ``error_code`` (429 carries retry_after)."""
        entry = self._methods.get(method.lower())
        if entry is None:
            known = sorted(name for name, _ in self._methods.values())
            raise ValueError(f"fail_next: unknown method {method!r}; known: {known}")
        if count < 1 or error_code < 400:
            raise ValueError(f"fail_next: need count >= 1 and error_code >= 400, got {count}, {error_code}")
        with self._cond:
            self._faults.setdefault(entry[0], []).extend(_injected_error(error_code, retry_after)
                                                         for _ in range(count))

    def set_unreachable(self, seconds: float) -> None:
        """For ``seconds``, answer every request (pending long polls too) with HTTP 502 Bad Gateway."""
        with self._cond:
            self._unreachable_until = time.monotonic() + seconds
            self._cond.notify_all()

    def set_reachable(self) -> None:
        """End an unreachable period now."""
        with self._cond:
            self._unreachable_until = 0.0
            self._cond.notify_all()

    # ---- request handling -------------------------------------------------------------------------
    def _handle(self, path: str, params: JSONDict) -> tuple[int, JSONDict]:
        """Answer one Bot API request (HTTP status, JSON body); the HTTP handler's only entry point."""
        match = _PATH_RE.match(path)
        entry = self._methods.get(match.group(2).lower()) if match else None
        method = entry[0] if entry else (match.group(2) if match else path)
        with self._cond:
            self._requests.append(LoggedRequest(method, params))
            self._cond.notify_all()
            try:
                if self._is_unreachable():
                    raise ApiError(502, "Bad Gateway")
                if match is None or entry is None:
                    raise ApiError(404, "Not Found")
                if match.group(1) != self.token:
                    raise ApiError(401, "Unauthorized")
                faults = self._faults.get(method)
                if faults:
                    raise faults.pop(0)
                return 200, {"ok": True, "result": entry[1](params)}
            except ApiError as error:
                return error.code, error.payload()

    def _is_unreachable(self) -> bool:
        return time.monotonic() < self._unreachable_until

    def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        offset, limit = _int_param(params, "offset", 0), min(max(_int_param(params, "limit", 100), 1), 100)
        deadline = time.monotonic() + _int_param(params, "timeout", 0)
        allowed = params.get("allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
                raise _bad_request("can't parse allowed_updates JSON array")
            self._allowed_updates = list(allowed) or list(UPDATE_TYPES)
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        while True:
            self._updates = [u for u in self._updates if any(k in u for k in self._allowed_updates)]
            remaining = deadline - time.monotonic()
            if self._updates or self._stopping or self._is_unreachable() or remaining <= 0:
                break
            self._cond.wait(remaining)
        if self._is_unreachable():
            raise ApiError(502, "Bad Gateway")
        return self._updates[:limit]

    def _send_message(self, params: JSONDict) -> JSONDict:
        chat_id = self._chat_id(params)
        text, parse_mode = self._text(params)
        markup = self._reply_markup(params)
        message: JSONDict = {"message_id": self._take_message_id(), "from": self._bot_user,
                             "chat": self._chat(chat_id, None), "date": int(time.time()), "text": text}
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes only inline keyboards
        return self._store("sendMessage", chat_id, message, parse_mode, markup)

    def _edit_message_text(self, params: JSONDict) -> JSONDict:
        message = self._message_to_edit(params)
        text, parse_mode = self._text(params)
        markup = self._reply_markup(params)  # absent = the inline keyboard is removed, as on Telegram
        if text == message["text"] and markup == message.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        edited = self._edited(message, text, markup)
        return self._store("editMessageText", self._chat_id(params), edited, parse_mode, markup)

    def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict:
        message = self._message_to_edit(params)
        markup = self._reply_markup(params)
        if markup == message.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        edited = self._edited(message, message["text"], markup)
        return self._store("editMessageReplyMarkup", self._chat_id(params), edited, None, markup)

    def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._open_callback_ids:
            raise _bad_request("query is too old and response timeout expired or query ID is invalid")
        self._open_callback_ids.discard(query_id)
        return True

    def _delete_webhook(self, params: JSONDict) -> bool:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
            raise _bad_request("can't parse commands JSON array")
        for command in commands:
            if not _COMMAND_RE.match(str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(params)] = commands
        return True

    def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return self._commands.get(self._commands_key(params), [])

    def _delete_my_commands(self, params: JSONDict) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    # ---- helpers (called with the lock held) ------------------------------------------------------
    def _wait_for(self, items: list[T], predicate: Callable[[T], bool], timeout: float, start: int,
                  what: str) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            checked = start
            while True:
                for item in items[checked:]:
                    if predicate(item):
                        return item
                checked = max(checked, len(items))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    listing = "\n".join(f"  [{i}] {item!r}" for i, item in enumerate(items)) or "  (nothing)"
                    raise AssertionError(f"no matching {what} within {timeout}s (from index {start}); "
                                         f"received {len(items)}:\n{listing}")
                self._cond.wait(remaining)

    def _push_update(self, body: JSONDict) -> JSONDict:
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self._updates.append(update)
        self._cond.notify_all()
        return update

    def _take_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1

    @staticmethod
    def _user(user_id: int, username: str | None) -> JSONDict:
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise ValueError(f"user_id must be a positive int, got {user_id!r}")
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": username or f"User {user_id}"}
        if username:
            user["username"] = username
        return user

    @staticmethod
    def _chat(chat_id: int | str, user: JSONDict | None) -> JSONDict:
        if isinstance(chat_id, str):
            return {"id": -1000000000001, "type": "channel", "title": chat_id, "username": chat_id[1:]}
        if chat_id > 0:
            first_name = user["first_name"] if user else f"User {chat_id}"
            return {"id": chat_id, "type": "private", "first_name": first_name}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": f"Chat {chat_id}"}

    @staticmethod
    def _chat_id(params: JSONDict) -> int | str:
        value = params.get("chat_id")
        if value is None or value == "":
            raise _bad_request("chat_id is empty")
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int | str) or value == 0 or (
                isinstance(value, str) and not value.startswith("@")):
            raise _bad_request("chat not found")
        return value

    @staticmethod
    def _text(params: JSONDict) -> tuple[str, str | None]:
        text, parse_mode = params.get("text"), params.get("parse_mode")
        if not isinstance(text, str) or not text.strip():
            raise _bad_request("message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad_request("message is too long")
        if parse_mode is not None and parse_mode not in PARSE_MODES:
            raise _bad_request(f"unsupported parse_mode {parse_mode!r}")
        problem = _html_error(text) if parse_mode == "HTML" else None
        if problem:
            raise _bad_request(f"can't parse entities: {problem}")
        return text, parse_mode

    @staticmethod
    def _reply_markup(params: JSONDict) -> JSONDict | None:
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            try:
                markup = json.loads(markup)
            except ValueError:
                raise _bad_request("can't parse reply keyboard markup JSON object") from None
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard", [])
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad_request("can't parse inline keyboard: inline_keyboard must be an Array of Arrays")
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _bad_request("can't parse inline keyboard button: text must be of type String")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise _bad_request("BUTTON_DATA_INVALID")
            if len(button) < 2:
                raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed in the "
                                   "inline keyboard")
        return markup

    def _message_to_edit(self, params: JSONDict) -> JSONDict:
        if "inline_message_id" in params:
            raise _bad_request("inline messages are not supported by the fake")
        chat_id = self._chat_id(params)
        message = self._bot_messages.get(_int_param(params, "message_id", 0))
        if message is None or (isinstance(chat_id, int) and message["chat"]["id"] != chat_id):
            raise _bad_request("message to edit not found")
        return message

    @staticmethod
    def _edited(message: JSONDict, text: str, markup: JSONDict | None) -> JSONDict:
        edited = {k: v for k, v in message.items() if k != "reply_markup"}
        edited.update(text=text, edit_date=int(time.time()))
        if markup is not None and "inline_keyboard" in markup:
            edited["reply_markup"] = markup
        return edited

    def _store(self, method: str, chat_id: int | str, message: JSONDict, parse_mode: str | None,
               markup: JSONDict | None) -> JSONDict:
        self._bot_messages[message["message_id"]] = message
        sent = SentMessage(method, chat_id, message["message_id"], message["text"], parse_mode, markup,
                           time.time())
        self._sent.append(sent)
        if self._record_path is not None:
            with self._record_path.open("a", encoding="utf-8") as record:
                record.write(json.dumps(asdict(sent)) + "\n")
        self._cond.notify_all()
        return message

    @staticmethod
    def _commands_key(params: JSONDict) -> str:
        return json.dumps([params.get("scope") or {"type": "default"}, params.get("language_code") or ""],
                          sort_keys=True)


def _make_handler(fake: FakeTelegramServer) -> type[BaseHTTPRequestHandler]:
    """An HTTP/1.1 keep-alive request handler bound to ``fake`` (PTB reuses its connections)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One buffered write per response, sent at once: headers and body in separate TCP segments
        # would meet the client's delayed ACK and cost ~40 ms per request.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            with fake._cond:
                fake._connections.add(self.connection)

        def finish(self) -> None:
            with fake._cond:
                fake._connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self._answer(b"")

        def do_POST(self) -> None:
            self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _answer(self, body: bytes) -> None:
            url = urlsplit(self.path)
            params = _decode_form(parse_qsl(url.query, keep_blank_values=True))
            content_type = self.headers.get_content_type()
            try:
                if content_type == "application/json" and body:
                    loaded = json.loads(body)
                    if not isinstance(loaded, dict):
                        raise ValueError("the JSON body must be an object")
                    params.update(loaded)
                elif content_type == "multipart/form-data":
                    raise ValueError("multipart uploads are not supported by the fake")
                elif body:
                    params.update(_decode_form(parse_qsl(body.decode(), keep_blank_values=True)))
                status, answer = fake._handle(url.path, params)
            except ValueError as exc:
                status, answer = 400, _bad_request(str(exc)).payload()
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:
                self.close_connection = True  # the client gave up (e.g. a cancelled long poll)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: tests read requests_log() rather than stderr."""

    return Handler


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone until SIGTERM or Ctrl-C (for bots started in another process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", required=True)
    parser.add_argument("--record", type=Path, help="append every sent or edited message here as JSON lines")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeTelegramServer(args.token, args.host, args.port, record_path=args.record) as fake:
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
