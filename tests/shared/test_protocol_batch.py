"""``events`` batches and encode-once: ``EventBatch``, ``pack_events``, ``event_body``.

The promise under test: a receiver that handles the events of each frame in order gets exactly
the events that were packed, however they were split into frames, and no frame is larger than
the limit; an event's cached text is exactly what encoding it afresh gives.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plancast.shared import (
    MAX_MESSAGE_BYTES,
    SERVER_MESSAGES,
    ChangeEvent,
    Delta,
    End,
    ErrorCode,
    EventBatch,
    LocalProtocolError,
    RemoteProtocolError,
    Snapshot,
    Status,
    StreamEvent,
    decode_server,
    encode,
    event_body,
    event_from_body,
    pack_events,
    to_dict,
)

SID = "st_dfan66mbj3a7fcjn"


def plain_json(message: object) -> str:
    """The frame as ``json.dumps`` of the message's dict, nested messages included."""

    def convert(value: object) -> object:
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        if hasattr(value, "TYPE"):
            return {k: convert(v) for k, v in to_dict(value).items()}  # type: ignore[arg-type]
        return value

    return json.dumps(convert(message), ensure_ascii=False, separators=(",", ":"))


def fresh(event: StreamEvent) -> StreamEvent:
    """An equal event that has never been encoded."""
    return type(event)(**{f.name: getattr(event, f.name) for f in fields(event)})


def unpack(frames: list[str]) -> list[StreamEvent]:
    """What a client makes of the frames: the events, in order, as it handles them."""
    events: list[StreamEvent] = []
    for frame in frames:
        message = decode_server(frame)
        if isinstance(message, EventBatch):
            events.extend(message.events)
        else:
            assert isinstance(message, StreamEvent)
            events.append(message)
    return events


def size(frame: str) -> int:
    return len(frame.encode("utf-8"))


# -- strategies -------------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),  # no lone surrogates: not UTF-8
    max_size=40,
)


@st.composite
def streams(draw: st.DrawFn, max_events: int = 40) -> list[StreamEvent]:
    """The events of one stream from a random first seq: status, delta, change, maybe an end."""
    first = draw(st.integers(min_value=1, max_value=10**6))
    count = draw(st.integers(min_value=1, max_value=max_events))
    events: list[StreamEvent] = []
    for n in range(count):
        seq = first + n
        kind = draw(st.sampled_from(["delta", "delta", "delta", "status", "change"]))
        if kind == "delta":
            events.append(Delta(stream_id=SID, seq=seq, text=draw(TEXT)))
        elif kind == "status":
            events.append(Status(stream_id=SID, seq=seq, stage="building", detail=draw(TEXT)))
        else:
            events.append(
                ChangeEvent(stream_id=SID, seq=seq, change_id="chg_1", path="a.py", op="write")
            )
    if draw(st.booleans()):
        message = draw(st.none() | TEXT)
        events.append(End(stream_id=SID, seq=first + count, error_message=message))
    return events


# -- EventBatch -------------------------------------------------------------------------------


def test_a_batch_round_trips_and_its_frame_is_plain_json() -> None:
    batch = EventBatch(
        stream_id=SID,
        events=(
            Status(stream_id=SID, seq=1, stage="planning", detail="openai/gpt-4.1"),
            Delta(stream_id=SID, seq=2, text='Grüße ✓\n"quoted"'),
            End(stream_id=SID, seq=3, status="finished"),
        ),
    )
    frame = encode(batch)
    assert frame == plain_json(batch)
    assert decode_server(frame) == batch
    assert SERVER_MESSAGES["events"] is EventBatch
    # each item is byte for byte the event's own frame
    items = json.loads(frame)["events"]
    assert [json.dumps(i, ensure_ascii=False, separators=(",", ":")) for i in items] == [
        encode(e) for e in batch.events
    ]


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ((), "must not be empty"),
        ((Delta(stream_id="st_other", seq=1),), "batch's stream_id"),
        ((Delta(stream_id=SID, seq=1), Delta(stream_id=SID, seq=3)), "consecutive"),
        ((Delta(stream_id=SID, seq=2), Delta(stream_id=SID, seq=1)), "consecutive"),
        ((End(stream_id=SID, seq=1), Delta(stream_id=SID, seq=2)), "only the last"),
        ((Snapshot(stream_id=SID, seq=1),), "only status, delta, change and end"),
    ],
)
def test_a_batch_that_breaks_a_rule_cannot_exist(
    events: tuple[StreamEvent, ...], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        EventBatch(stream_id=SID, events=events)


def _batch_frame(*items: object, stream_id: str = SID) -> str:
    return json.dumps({"type": "events", "stream_id": stream_id, "events": list(items)})


def _delta(seq: int, **extra: object) -> dict[str, object]:
    return {"type": "delta", "stream_id": SID, "seq": seq, "text": "x", **extra}


@pytest.mark.parametrize(
    "frame",
    [
        _batch_frame(),
        _batch_frame(_delta(1), _delta(3)),
        _batch_frame(_delta(1), stream_id="st_other"),
        _batch_frame(_delta(1, colour="red")),
        _batch_frame({"stream_id": SID, "seq": 1, "text": "no type"}),
        _batch_frame({"type": "snapshot", "stream_id": SID, "seq": 1}),
        _batch_frame({"type": "events", "stream_id": SID, "events": []}),
        _batch_frame({"type": "pong", "nonce": ""}),
        _batch_frame("not an object"),
        _batch_frame(_delta(0)),
        json.dumps({"type": "events", "stream_id": SID, "events": {"0": _delta(1)}}),
        json.dumps({"type": "events", "stream_id": SID}),
    ],
)
def test_the_decoder_refuses_a_bad_batch_with_a_typed_error(frame: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_server(frame)
    assert caught.value.code == ErrorCode.BAD_MESSAGE


def test_the_decoder_refuses_a_batch_frame_over_the_limit() -> None:
    count = MAX_MESSAGE_BYTES // 60 + 1
    frame = _batch_frame(*(_delta(n, text="y" * 20) for n in range(1, count + 1)))
    assert size(frame) > MAX_MESSAGE_BYTES
    with pytest.raises(RemoteProtocolError) as caught:
        decode_server(frame)
    assert caught.value.code == ErrorCode.MESSAGE_TOO_LARGE


# -- pack_events ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(events=streams(), max_bytes=st.integers(min_value=60, max_value=2000))
def test_packed_frames_give_back_exactly_the_events_within_the_limit(
    events: list[StreamEvent], max_bytes: int
) -> None:
    frames = list(pack_events(events, max_bytes=max_bytes))
    assert unpack(frames) == events
    for frame in frames:
        message = decode_server(frame)
        if isinstance(message, EventBatch):
            assert len(message.events) >= 2  # a lone event travels in its own frame
            assert size(frame) <= max_bytes
        else:
            assert frame == encode(message)


@settings(max_examples=100, deadline=None)
@given(events=streams(max_events=60))
def test_events_that_fit_travel_in_one_frame(events: list[StreamEvent]) -> None:
    frames = list(pack_events(events))
    assert len(frames) == 1
    assert unpack(frames) == events


@settings(max_examples=100, deadline=None)
@given(
    events=st.lists(streams(max_events=8), min_size=1, max_size=4).map(
        lambda runs: [
            replace(e, stream_id=f"st_{n:016d}") for n, run in enumerate(runs) for e in run
        ]
    )
)
def test_a_batch_never_mixes_streams(events: list[StreamEvent]) -> None:
    frames = list(pack_events(events))
    assert unpack(frames) == events
    assert len(frames) <= len({e.stream_id for e in events}) * 2


def test_a_catch_up_too_large_for_one_frame_is_split_at_the_limit() -> None:
    # 10,000 events of ~300 bytes: about 3 MiB, so at least three frames.
    events = [Delta(stream_id=SID, seq=n, text="z" * 250) for n in range(1, 10_001)]
    frames = list(pack_events(events))
    assert len(frames) >= 3
    assert all(size(f) <= MAX_MESSAGE_BYTES for f in frames)
    assert all(size(f) > MAX_MESSAGE_BYTES - 400 for f in frames[:-1])  # each filled up
    assert unpack(frames) == events


def test_multibyte_text_is_measured_in_utf8_bytes() -> None:
    events = [Delta(stream_id=SID, seq=n, text="✓" * 100) for n in range(1, 50)]  # 3 bytes each
    frames = list(pack_events(events, max_bytes=2000))
    assert all(size(f) <= 2000 for f in frames if '"type":"events"' in f[:20])
    assert unpack(frames) == events


def test_an_event_too_large_to_share_a_frame_travels_alone() -> None:
    big = Delta(stream_id=SID, seq=2, text="b" * (MAX_MESSAGE_BYTES - 200))
    events = [Delta(stream_id=SID, seq=1, text="a"), big, Delta(stream_id=SID, seq=3, text="c")]
    frames = list(pack_events(events))
    assert frames == [encode(e) for e in events]


def test_a_snapshot_travels_alone_after_the_events_before_it() -> None:
    events: list[StreamEvent] = [
        Delta(stream_id=SID, seq=1, text="a"),
        Delta(stream_id=SID, seq=2, text="b"),
        Snapshot(stream_id=SID, seq=3, reply="ab", reason="gone"),
    ]
    frames = list(pack_events(events))
    assert len(frames) == 2
    assert frames[1] == encode(events[2])
    assert unpack(frames) == events


def test_an_end_closes_its_batch() -> None:
    end = End(stream_id=SID, seq=2)
    events = [Delta(stream_id=SID, seq=1, text="a"), end, Delta(stream_id=SID, seq=3, text="x")]
    frames = list(pack_events(events))
    assert unpack(frames) == events
    first = decode_server(frames[0])
    assert isinstance(first, EventBatch) and first.events[-1] == end


def test_an_event_too_large_for_any_frame_raises_after_the_frames_before_it() -> None:
    events = [
        Delta(stream_id=SID, seq=1, text="a"),
        Delta(stream_id=SID, seq=2, text="b"),
        Delta(stream_id=SID, seq=3, text="c" * (MAX_MESSAGE_BYTES + 1)),
    ]
    packed = pack_events(events)
    first = next(packed)
    assert unpack([first]) == events[:2]
    with pytest.raises(LocalProtocolError) as caught:
        next(packed)
    assert caught.value.code == ErrorCode.MESSAGE_TOO_LARGE


def test_a_stream_id_that_json_must_escape_is_never_batched() -> None:
    odd = 'st_"odd"'
    events = [Delta(stream_id=odd, seq=1, text="a"), Delta(stream_id=odd, seq=2, text="b")]
    frames = list(pack_events(events))
    assert frames == [encode(e) for e in events]
    assert [json.loads(f)["stream_id"] for f in frames] == [odd, odd]


# -- encode once ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(events=streams())
def test_the_cached_text_is_what_encoding_afresh_gives(events: list[StreamEvent]) -> None:
    for event in events:
        first = encode(event)
        assert encode(event) is first  # cached: the same string object
        assert first == encode(fresh(event)) == plain_json(event)


def test_the_cache_is_not_a_field_and_does_not_change_equality() -> None:
    event = Delta(stream_id=SID, seq=1, text="a")
    encode(event)
    assert event == fresh(event)
    assert hash(event) == hash(fresh(event))
    assert "_encoded" not in repr(event)
    assert [f.name for f in fields(event)] == ["stream_id", "seq", "text"]
    assert replace(event, text="b") != event
    assert encode(replace(event, text="b")) == encode(fresh(replace(event, text="b")))


def test_an_event_too_large_for_a_frame_is_not_cached_and_still_refused() -> None:
    event = Delta(stream_id=SID, seq=1, text="x" * (MAX_MESSAGE_BYTES + 1))
    for _ in range(2):
        with pytest.raises(LocalProtocolError):
            encode(event)


@settings(max_examples=200, deadline=None)
@given(events=streams())
def test_an_event_rebuilt_from_its_body_is_equal_and_carries_the_same_text(
    events: list[StreamEvent],
) -> None:
    for event in events:
        body = event_body(event)
        data = to_dict(event)
        for key in ("type", "stream_id", "seq"):
            del data[key]
        assert body == json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        rebuilt = event_from_body(event.TYPE, event.stream_id, event.seq, body)
        assert rebuilt == event
        assert encode(rebuilt) == encode(fresh(event))


def test_a_body_with_other_fields_is_rebuilt_and_encoded_afresh() -> None:
    # A body written before a field existed (or with another field order): the frame text
    # is encoded from the event, never joined from the body.
    rebuilt = event_from_body("end", SID, 7, '{"changes":2,"status":"stopped"}')
    assert rebuilt == End(stream_id=SID, seq=7, status="stopped", changes=2)
    assert encode(rebuilt) == plain_json(rebuilt)


def test_bodies_of_every_stream_event_type() -> None:
    samples: list[StreamEvent] = [
        Status(stream_id=SID, seq=1, stage="planning", detail="m"),
        Delta(stream_id=SID, seq=2, text=""),
        ChangeEvent(stream_id=SID, seq=3, change_id="chg_1", path="a/b.py", op="edit"),
        End(stream_id=SID, seq=4, status="failed", error_code="internal", error_message="m"),
        Snapshot(stream_id=SID, seq=4, reply="r", reason="why"),
    ]
    for event in samples:
        rebuilt = event_from_body(event.TYPE, SID, event.seq, event_body(event))
        assert rebuilt == event and encode(rebuilt) == plain_json(event)
    with pytest.raises(KeyError):
        event_from_body("pong", SID, 1, "{}")
