"""The stream protocol codec: round trips, error codes for bad input, and no leaked keys."""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from plancast.shared import (
    CLIENT_MESSAGES,
    MAX_MESSAGE_BYTES,
    MAX_SEALED_CHARS,
    PROTOCOL_VERSION,
    SEAL_SUITE,
    SERVER_MESSAGES,
    STREAM_EVENTS,
    SUBPROTOCOL,
    Attach,
    ChangeEvent,
    Delta,
    End,
    Error,
    ErrorCode,
    EventBatch,
    LocalProtocolError,
    Message,
    NewSeal,
    Ping,
    Pong,
    ProviderCredentials,
    RemoteProtocolError,
    SealOffer,
    Snapshot,
    Started,
    StartStream,
    Status,
    Stop,
    decode_client,
    decode_server,
    encode,
    to_dict,
)

SECRET = "sk-live-7f3a9c0b1e2d4f6a8b9c0d1e2f3a4b5c"
SEALED = "q3Jz0bNnYpVb9k2W5x8mAe1fTn4Lk7Hc0uQy6Rz3Wd8sEo2Jv5Mg1Pa9Xi4Bt7Cl"
"""Stands for a sealed credentials blob: to the codec it is opaque base64url text."""

CLIENT_SAMPLES: list[Message] = [
    StartStream(
        request_id="req-1",
        plan_id="plan_42",
        mode="tell",
        prompt="Add a health check endpoint ✓",
        model="openai/gpt-4.1",
        seal_id="st_n4crwrdtayqrp13w",
        sealed=SEALED,
        branch="feature-x",
        fallback_model="anthropic/claude-sonnet-5-5",
    ),
    StartStream(
        request_id="r",
        plan_id="p",
        mode="continue",
        prompt="",
        model="ollama/llama3.1",
        seal_id="s",
        sealed="x",
    ),
    Attach("stream-1", after=17),
    Attach("stream-1"),
    Stop("stream-1"),
    Ping("n-1"),
    Ping(),
    NewSeal("req-1"),
]
SERVER_SAMPLES: list[Message] = [
    Started(request_id="req-1", stream_id="s1", plan_id="plan_42", branch="main"),
    Error(code="busy", message="a stream is running", request_id="req-1", stream_id="s1"),
    Error(code="internal", message="oops"),
    Pong("n-1"),
    Pong(),
    Status("s1", 1, stage="planning", detail="model openai/gpt-4.1"),
    Status("s1", 1),
    Delta("s1", 2, text='Here is the plan — ünïcode, "quotes", \n newlines'),
    ChangeEvent("s1", 3, change_id="c1", path="src/a.py", op="edit", status="failed", detail="x"),
    End("s1", 4, status="failed", error_code="provider_timeout", error_message="slow", changes=2),
    End("s1", 5),
    Snapshot("s1", 9, status="stopped", reply="the saved reply", reason="events are gone"),
    EventBatch("s1", (Delta("s1", 6, text="a"), End("s1", 7))),
    SealOffer(
        request_id="req-1",
        seal_id="st_n4crwrdtayqrp13w",
        public_key="mG9AfVq2ZbZ6kD3Wm4Qe1uXo8Lr5Ts7Yc0Hn2Jp4Kw8",
        expires_at=1790000000.125,
        suite=SEAL_SUITE,
    ),
]


@pytest.mark.parametrize(
    ("value", "read"), [(1790000000, 1790000000.0), (1790000000.125, 1790000000.125), (0, 0.0)]
)
def test_a_number_field_takes_json_integers_and_fractions(value: object, read: float) -> None:
    data = to_dict(SERVER_SAMPLES[-1]) | {"expires_at": value}
    offer = decode_server(json.dumps(data))
    assert isinstance(offer, SealOffer)
    assert offer.expires_at == read and type(offer.expires_at) is float


@pytest.mark.parametrize("value", ["1790000000", True, None, [1], "NaN", "BIG"])
def test_a_number_field_refuses_anything_else(value: object) -> None:
    data = to_dict(SERVER_SAMPLES[-1]) | {"expires_at": value}
    frame = json.dumps(data)
    if value == "NaN":  # JSON has no NaN, but Python's decoder reads the bare word
        frame = frame.replace('"NaN"', "NaN")
    if value == "BIG":  # an integer no float can hold
        frame = frame.replace('"BIG"', "1" + "0" * 400)
    with pytest.raises(RemoteProtocolError) as info:
        decode_server(frame)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert "seal.expires_at must be" in info.value.message


@pytest.mark.parametrize("change", [{"public_key": ""}, {"suite": ""}, {"seal_id": "a b"}])
def test_a_seal_offer_checks_itself(change: dict[str, str]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_server(json.dumps(to_dict(SERVER_SAMPLES[-1]) | change))
    assert info.value.code is ErrorCode.BAD_MESSAGE
    with pytest.raises(ValueError, match="finite"):
        SealOffer("r", "s", "k", float("nan"), SEAL_SUITE)


def test_protocol_constants() -> None:
    assert PROTOCOL_VERSION == 1
    assert SUBPROTOCOL == "plancast.v1"
    assert MAX_MESSAGE_BYTES == 1 << 20
    assert set(STREAM_EVENTS) == {Status, Delta, ChangeEvent, End, Snapshot}
    assert set(STREAM_EVENTS) <= set(SERVER_MESSAGES.values())


def test_the_samples_cover_every_message_type() -> None:
    assert {type(m) for m in CLIENT_SAMPLES} == set(CLIENT_MESSAGES.values())
    assert {type(m) for m in SERVER_SAMPLES} == set(SERVER_MESSAGES.values())
    assert not set(CLIENT_MESSAGES) & set(SERVER_MESSAGES)
    for registry in (CLIENT_MESSAGES, SERVER_MESSAGES):
        assert all(cls.TYPE == kind for kind, cls in registry.items())


@pytest.mark.parametrize("message", CLIENT_SAMPLES, ids=repr)
def test_client_messages_round_trip(message: Message) -> None:
    frame = encode(message)
    assert json.loads(frame)["type"] == message.TYPE
    assert decode_client(frame) == message
    assert decode_client(frame.encode()) == message


@pytest.mark.parametrize("message", SERVER_SAMPLES, ids=repr)
def test_server_messages_round_trip(message: Message) -> None:
    frame = encode(message)
    assert decode_server(frame) == message
    assert decode_server(frame.encode()) == message


def test_encode_is_compact_json_with_every_field() -> None:
    assert encode(Attach("s", after=3)) == '{"type":"attach","stream_id":"s","after":3}'
    start = to_dict(StartStream("r", "p", "chat", "hi", "m", "s", "x"))
    assert (start["branch"], start["fallback_model"]) == ("main", None)
    assert encode(Delta("s", 1, "é")) == '{"type":"delta","stream_id":"s","seq":1,"text":"é"}'


def test_each_side_refuses_the_other_sides_messages() -> None:
    for message in SERVER_SAMPLES:
        with pytest.raises(RemoteProtocolError) as info:
            decode_client(encode(message))
        assert info.value.code is ErrorCode.UNKNOWN_MESSAGE
    for message in CLIENT_SAMPLES:
        with pytest.raises(RemoteProtocolError) as info:
            decode_server(encode(message))
        assert info.value.code is ErrorCode.UNKNOWN_MESSAGE


# -- bad input gets the right code ------------------------------------------------------------


def _start(**changes: Any) -> str:
    data: dict[str, Any] = {
        "type": "start",
        "request_id": "r1",
        "plan_id": "p1",
        "mode": "tell",
        "prompt": "do it",
        "model": "openai/gpt-4.1",
        "seal_id": "st_n4crwrdtayqrp13w",
        "sealed": SEALED,
    }
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


_DROP = object()

BAD_CLIENT_FRAMES: list[tuple[str, str | bytes, ErrorCode, str]] = [
    ("too large", "x" * (MAX_MESSAGE_BYTES + 1), ErrorCode.MESSAGE_TOO_LARGE, "larger than"),
    ("too large bytes", b" " * (MAX_MESSAGE_BYTES + 1), ErrorCode.MESSAGE_TOO_LARGE, "larger"),
    ("empty", "", ErrorCode.BAD_MESSAGE, "not valid JSON"),
    ("not json", "{type: ping}", ErrorCode.BAD_MESSAGE, "not valid JSON"),
    ("bad utf-8", b'{"type":"ping","nonce":"\xff"}', ErrorCode.BAD_MESSAGE, "not valid JSON"),
    ("huge int", '{"type":"attach","stream_id":"s","after":' + "9" * 5000 + "}",
     ErrorCode.BAD_MESSAGE, "not valid JSON"),
    ("array", "[]", ErrorCode.BAD_MESSAGE, "must be a JSON object"),
    ("string", '"ping"', ErrorCode.BAD_MESSAGE, "must be a JSON object"),
    ("no type", "{}", ErrorCode.BAD_MESSAGE, "no string 'type'"),
    ("number type", '{"type":1}', ErrorCode.BAD_MESSAGE, "no string 'type'"),
    ("unknown type", '{"type":"launch"}', ErrorCode.UNKNOWN_MESSAGE, "unknown message type"),
    ("server type", '{"type":"pong"}', ErrorCode.UNKNOWN_MESSAGE, "unknown message type 'pong'"),
    ("missing field", '{"type":"stop"}', ErrorCode.BAD_MESSAGE, "missing field 'stream_id'"),
    ("unknown field", '{"type":"stop","stream_id":"s","force":true}', ErrorCode.BAD_MESSAGE,
     "unknown field(s) 'force'"),
    ("wrong type", '{"type":"stop","stream_id":5}', ErrorCode.BAD_MESSAGE,
     "stop.stream_id must be of type str"),
    ("bool for int", '{"type":"attach","stream_id":"s","after":true}', ErrorCode.BAD_MESSAGE,
     "attach.after must be of type int"),
    ("float for int", '{"type":"attach","stream_id":"s","after":1.0}', ErrorCode.BAD_MESSAGE,
     "must be of type int"),
    ("null for str", '{"type":"ping","nonce":null}', ErrorCode.BAD_MESSAGE, "must be of type str"),
    ("negative after", '{"type":"attach","stream_id":"s","after":-1}', ErrorCode.BAD_MESSAGE,
     "after must be >= 0"),
    ("bad id", '{"type":"stop","stream_id":"a b"}', ErrorCode.BAD_MESSAGE, "stream_id must be"),
    ("long id", '{"type":"stop","stream_id":"' + "a" * 65 + '"}', ErrorCode.BAD_MESSAGE,
     "stream_id must be"),
    ("bad mode", _start(mode="build"), ErrorCode.BAD_MESSAGE, "start.mode must be one of"),
    ("empty prompt", _start(prompt="  "), ErrorCode.BAD_MESSAGE, "prompt must not be empty"),
    ("long prompt", _start(prompt="x" * (256 * 1024 + 1)), ErrorCode.BAD_MESSAGE, "longer than"),
    ("bad branch", _start(branch="a/b"), ErrorCode.BAD_MESSAGE, "branch must be"),
    ("no model", _start(model=_DROP), ErrorCode.BAD_MESSAGE, "missing field 'model'"),
    ("no seal id", _start(seal_id=_DROP), ErrorCode.BAD_MESSAGE, "missing field 'seal_id'"),
    ("no sealed", _start(sealed=_DROP), ErrorCode.BAD_MESSAGE, "missing field 'sealed'"),
    ("bad seal id", _start(seal_id="st x"), ErrorCode.BAD_MESSAGE, "seal_id must be"),
    ("empty sealed", _start(sealed=""), ErrorCode.BAD_MESSAGE,
     f"sealed must be 1-{MAX_SEALED_CHARS} characters"),
    ("long sealed", _start(sealed="A" * (MAX_SEALED_CHARS + 1)), ErrorCode.BAD_MESSAGE,
     "sealed must be 1-"),
    ("sealed not text", _start(sealed=[SEALED]), ErrorCode.BAD_MESSAGE,
     "start.sealed must be of type str"),
    ("plain creds", _start(credentials=[{"provider": "openai", "api_key": SECRET}]),
     ErrorCode.BAD_MESSAGE, "carry no plain credentials"),
    ("plain creds empty", _start(credentials=[]), ErrorCode.BAD_MESSAGE,
     "carry no plain credentials"),
    ("plain creds not list", _start(credentials=SECRET), ErrorCode.BAD_MESSAGE,
     "carry no plain credentials"),
    ("plain creds null", _start(credentials=None), ErrorCode.BAD_MESSAGE,
     "carry no plain credentials"),
    ("plain creds and more", _start(credentials=[SECRET], extra=1), ErrorCode.BAD_MESSAGE,
     "carry no plain credentials"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "code", "text"),
    [case[1:] for case in BAD_CLIENT_FRAMES],
    ids=[case[0] for case in BAD_CLIENT_FRAMES],
)
def test_bad_client_frames_get_the_right_code(
    frame: str | bytes, code: ErrorCode, text: str
) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_client(frame)
    assert info.value.code is code
    assert text in info.value.message
    assert SECRET not in info.value.message


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        ('{"type":"error","code":"teapot","message":"m"}', "unknown error code"),
        ('{"type":"end","stream_id":"s","seq":1,"status":"exploded"}', "end.status must be"),
        ('{"type":"delta","stream_id":"s","seq":0,"text":"x"}', "seq must be >= 1"),
        ('{"type":"started","request_id":"r","stream_id":"s","plan_id":"p"}', "missing field"),
        ('{"type":"end","stream_id":"s","seq":1,"error_code":7}', "must be of type str"),
    ],
)
def test_bad_server_frames_are_bad_messages(frame: str, text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_server(frame)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert text in info.value.message


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    empty = encode(Ping(""))
    frame = encode(Ping("x" * (MAX_MESSAGE_BYTES - len(empty))))
    assert len(frame) == MAX_MESSAGE_BYTES
    assert decode_client(frame) == Ping("x" * (MAX_MESSAGE_BYTES - len(empty)))
    assert decode_client(frame.encode()) == decode_client(frame)


def test_encode_refuses_an_oversize_message() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode(Delta("s", 1, "x" * MAX_MESSAGE_BYTES))
    assert info.value.code is ErrorCode.MESSAGE_TOO_LARGE
    assert "delta message is larger than" in info.value.message


def test_encode_counts_bytes_not_characters() -> None:
    with pytest.raises(LocalProtocolError):
        encode(Delta("s", 1, "é" * (MAX_MESSAGE_BYTES // 2 + 1)))


def test_deeply_nested_json_is_a_bad_message() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_client("[" * 100_000)
    assert info.value.code is ErrorCode.BAD_MESSAGE


def test_an_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_client('{"type":"stop","stream_id":"abc\\n"}')


def test_messages_validate_when_built() -> None:
    with pytest.raises(ValueError, match="request_id"):
        StartStream("bad id", "p", "tell", "x", "m", "s", "x")
    with pytest.raises(ValueError, match="mode must be one of tell, chat, continue"):
        StartStream("r", "p", "build", "x", "m", "s", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="after"):
        Attach("s", after=-1)
    with pytest.raises(ValueError, match="seq"):
        Status("s", 0)
    with pytest.raises(ValueError, match="status"):
        End("s", 1, status="done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seal_id"):
        StartStream("r", "p", "tell", "x", "m", "no spaces", "x")
    with pytest.raises(ValueError, match="sealed must be"):
        StartStream("r", "p", "tell", "x", "m", "s", "")
    with pytest.raises(ValueError, match="provider must be one of"):
        ProviderCredentials("nope")
    with pytest.raises(AttributeError):
        Ping().nonce = "x"  # type: ignore[misc]


# -- credentials never show -------------------------------------------------------------------


def test_the_sealed_credentials_are_not_in_reprs() -> None:
    start = CLIENT_SAMPLES[0]
    assert isinstance(start, StartStream)
    for text in (repr(start), str(start)):
        assert SEALED not in text
        assert "st_n4crwrdtayqrp13w" in text  # the seal id still shows
    decoded = decode_client(encode(start))
    assert SEALED not in repr(decoded)
    assert to_dict(start)["sealed"] == SEALED  # it is sent, only not shown


def test_a_start_from_a_client_that_sends_plain_keys_is_told_why() -> None:
    # What a client from before sealing sends: its keys in ``credentials``, and no seal. It is
    # refused with the text that names the problem (not a missing seal_id), without its key.
    frame = _start(
        seal_id=_DROP, sealed=_DROP, credentials=[{"provider": "openai", "api_key": SECRET}]
    )
    with pytest.raises(RemoteProtocolError) as info:
        decode_client(frame)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert SECRET not in info.value.message
    assert "plain credentials" in info.value.message, (
        "BUG (shared/_protocol.py, _build): the 'credentials' check runs after the loop over "
        "StartStream's fields, so a pre-seal start, which has no seal_id, is refused as "
        f"{info.value.message!r} and never gets the message written for it"
    )


@pytest.mark.parametrize(
    "frame",
    [
        _start(mode="nope"),
        _start(prompt=""),
        _start(request_id="no spaces allowed"),
        _start(model=5),
        _start(extra=SECRET),
        _start(seal_id=SECRET + "/"),
        _start(sealed=[SECRET]),
        _start(sealed=SECRET * 1000),
        _start(credentials=[{"provider": "nope", "api_key": SECRET}]),
        _start(credentials=[{"provider": "openai", "api_key": SECRET, "base_url": 1}]),
        _start(credentials=[{"provider": "openai", "api_key": SECRET, "extra": SECRET}]),
        _start(credentials=[{"provider": "openai", "api_key": [SECRET]}]),
        _start(credentials=[SECRET]),
        _start(credentials=SECRET),
        _start(seal_id=_DROP, credentials=[{"provider": "openai", "api_key": SECRET}]),
        _start()[:-1],  # truncated JSON
        _start().encode()[:-1] + b"\xff",
    ],
)
def test_credentials_are_not_in_errors(frame: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_client(frame)
    exc = info.value
    shown = "".join(traceback.format_exception(exc)) + exc.message + repr(exc)
    assert SECRET not in shown
    assert SEALED not in shown
    assert exc.__cause__ is None


@pytest.mark.parametrize("frame", [_start()[:-1], _start().encode()[:-1] + b"\xff"])
def test_decode_errors_hold_no_reference_to_the_frame(frame: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_client(frame)
    assert info.value.__context__ is None


# -- fuzz -------------------------------------------------------------------------------------

_FIELD_NAMES = sorted(
    {"type", "request_id", "plan_id", "mode", "prompt", "model", "branch", "credentials"}
    | {"seal_id", "sealed", "fallback_model"}
    | {"stream_id", "after", "nonce", "seq", "text", "x"}
)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["tell", "chat", "continue", "openai", "azure", "a-b_c", "", " "]),
)
_JSON = st.recursive(
    _SCALAR,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_CREDENTIAL = st.dictionaries(
    st.sampled_from(["provider", "api_key", "base_url", "api_version", "other"]),
    _SCALAR,
)
_MESSAGE = st.fixed_dictionaries(
    {"type": st.sampled_from([*CLIENT_MESSAGES, *CLIENT_MESSAGES, "pong", "", "START"])},
    optional={
        **{name: _JSON for name in _FIELD_NAMES if name != "type"},
        "credentials": st.lists(st.one_of(_CREDENTIAL, _JSON), max_size=3),
    },
)


@st.composite
def _near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid client message with a few of its fields changed, dropped or added."""
    data = to_dict(draw(st.sampled_from(CLIENT_SAMPLES)))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from([*data, "x", "credentials"]))
        change = draw(st.sampled_from(["set", "drop"]))
        if change == "drop":
            data.pop(name, None)
        elif name == "credentials":
            data[name] = draw(st.lists(_CREDENTIAL, max_size=2))
        else:
            data[name] = draw(_SCALAR)
    return data


_FRAME = st.one_of(
    st.text(),
    st.binary(),
    _JSON.map(json.dumps),
    _MESSAGE.map(json.dumps),
    _near_valid().map(json.dumps),
    _near_valid().map(lambda m: json.dumps(m).encode()),
)


@settings(max_examples=500)
@given(_FRAME)
def test_decode_client_raises_nothing_but_remote_protocol_error(frame: str | bytes) -> None:
    try:
        message = decode_client(frame)
    except RemoteProtocolError as exc:
        event(exc.code)
        assert exc.code in ErrorCode
        assert exc.message
        return
    event(f"decoded {message.TYPE}")
    assert type(message) in CLIENT_MESSAGES.values()
    assert decode_client(encode(message)) == message
