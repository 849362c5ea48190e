"""Sealing provider credentials to one worker: round trips, what a seal is bound to, and refusals.

A seal opens only with the worker's private key, for the seal id and expiry it was made for,
before that expiry, and only if nobody changed a byte of it. Every refusal is a ``SealError``
whose text, repr and traceback hold no part of the key.
"""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from plancast.shared import (
    MAX_SEALED_CHARS,
    PROVIDERS,
    SEAL_SUITE,
    ProviderCredentials,
    SealError,
    open_credentials,
    seal_credentials,
    seal_info,
)

SECRET = "sk-live-7f3a9c0b1e2d4f6a8b9c0d1e2f3a4b5c"
SEAL_ID = "st_n4crwrdtayqrp13w"
EXPIRES_AT = 1_900_000_000.125
NOW = EXPIRES_AT - 30

CREDENTIALS = [
    ProviderCredentials("openai", api_key=SECRET, base_url="http://127.0.0.1:9/v1"),
    ProviderCredentials(
        "azure", api_key="azure-key-0123", base_url="https://x.example/", api_version="2024-10-21"
    ),
    ProviderCredentials("ollama"),
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Worker:
    """A worker's one-time key pair, as the worker makes it."""

    def __init__(self) -> None:
        self.private_key = X25519PrivateKey.generate()
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = _b64(raw)

    def seal(
        self,
        credentials: list[ProviderCredentials] = CREDENTIALS,
        *,
        seal_id: str = SEAL_ID,
        expires_at: float = EXPIRES_AT,
    ) -> str:
        return seal_credentials(
            credentials, public_key=self.public_key, seal_id=seal_id, expires_at=expires_at
        )

    def open(
        self,
        sealed: str,
        *,
        seal_id: str = SEAL_ID,
        expires_at: float = EXPIRES_AT,
        now: float = NOW,
    ) -> list[ProviderCredentials]:
        return open_credentials(
            sealed, private_key=self.private_key, seal_id=seal_id, expires_at=expires_at, now=now
        )


@pytest.fixture
def worker() -> Worker:
    return Worker()


def _refused(open_: Callable[[], Any], *texts: str) -> SealError:
    """``open_`` raises a ``SealError`` that shows none of the key; returns it."""
    with pytest.raises(SealError) as info:
        open_()
    error = info.value
    shown = "".join(traceback.format_exception(error)) + str(error) + repr(error)
    for text in (SECRET, *texts):
        assert text not in shown
    # No foreign exception is chained or shown (a decoder's error can hold the plaintext).
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return error


# -- round trips -----------------------------------------------------------------------------


def test_what_is_sealed_opens_as_it_was(worker: Worker) -> None:
    sealed = worker.seal()
    assert worker.open(sealed) == CREDENTIALS
    assert SECRET not in sealed
    assert SECRET.encode() not in _unb64(sealed)  # encrypted, not merely encoded
    assert "=" not in sealed and set(sealed) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def test_no_credentials_seal_too(worker: Worker) -> None:
    assert worker.open(worker.seal([])) == []


def test_each_seal_is_a_new_ciphertext(worker: Worker) -> None:
    # HPKE makes a fresh ephemeral key per seal: equal inputs do not give equal outputs.
    assert worker.seal() != worker.seal()


def test_the_suite_is_named() -> None:
    assert SEAL_SUITE == "HPKE-base/X25519-HKDF-SHA256/HKDF-SHA256/ChaCha20Poly1305"


def test_the_info_binds_the_seal_id_and_the_expiry() -> None:
    info = seal_info(SEAL_ID, EXPIRES_AT)
    assert info.startswith(b"plancast.v1 sealed credentials\x00")
    assert SEAL_ID.encode() in info and repr(EXPIRES_AT).encode() in info
    assert seal_info(SEAL_ID, 60) == seal_info(SEAL_ID, 60.0)  # a number, however written
    others = {seal_info("st_other", EXPIRES_AT), seal_info(SEAL_ID, EXPIRES_AT + 0.001)}
    assert info not in others and len(others) == 2


def test_the_seal_uses_the_named_suite(worker: Worker) -> None:
    # Opened here with the suite spelled out, independently of the module: the suite is fixed.
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    body = suite.decrypt(
        _unb64(worker.seal()), worker.private_key, info=seal_info(SEAL_ID, EXPIRES_AT)
    )
    assert json.loads(body)[0] == {
        "provider": "openai",
        "api_key": SECRET,
        "base_url": "http://127.0.0.1:9/v1",
        "api_version": None,
    }


_TEXT = st.text(min_size=1, max_size=80)
_CREDENTIAL = st.builds(
    ProviderCredentials,
    provider=st.sampled_from(sorted(PROVIDERS)),
    api_key=st.none() | _TEXT,
    base_url=st.none() | st.text(max_size=80),
    api_version=st.none() | st.text(max_size=20),
)


@settings(max_examples=100, deadline=None)
@given(credentials=st.lists(_CREDENTIAL, max_size=4), expires_at=st.floats(0, 4e9))
def test_any_credentials_round_trip(
    credentials: list[ProviderCredentials], expires_at: float
) -> None:
    worker = Worker()
    sealed = worker.seal(credentials, expires_at=expires_at)
    opened = worker.open(sealed, expires_at=expires_at, now=expires_at)
    assert opened == credentials
    for item in credentials:
        if item.api_key is not None and len(item.api_key) >= 8:
            assert item.api_key not in sealed


# -- refusals --------------------------------------------------------------------------------


def test_another_workers_key_does_not_open_it(worker: Worker) -> None:
    error = _refused(lambda: Worker().open(worker.seal()))
    assert "not sealed for this stream's worker" in str(error)


def test_another_seal_id_does_not_open_it(worker: Worker) -> None:
    sealed = worker.seal()
    error = _refused(lambda: worker.open(sealed, seal_id="st_aaaaaaaaaaaaaaaa"))
    assert "not sealed for this stream's worker" in str(error)


def test_another_expiry_does_not_open_it(worker: Worker) -> None:
    # The expiry is bound too, so nobody who forwards the seal can extend its life.
    sealed = worker.seal()
    _refused(lambda: worker.open(sealed, expires_at=EXPIRES_AT + 60, now=NOW))
    _refused(lambda: worker.open(sealed, expires_at=EXPIRES_AT - 0.001, now=NOW))


def test_an_expired_seal_does_not_open(worker: Worker) -> None:
    sealed = worker.seal()
    assert worker.open(sealed, now=EXPIRES_AT) == CREDENTIALS  # up to its expiry, included
    error = _refused(lambda: worker.open(sealed, now=EXPIRES_AT + 0.001))
    assert "expired" in str(error)


def _flip(sealed: str, at: int) -> str:
    raw = bytearray(_unb64(sealed))
    raw[at] ^= 0x01
    return _b64(bytes(raw))


@pytest.mark.parametrize("where", ["first", "enc-last", "body", "tag-last"])
def test_a_changed_byte_does_not_open(worker: Worker, where: str) -> None:
    sealed = worker.seal()
    size = len(_unb64(sealed))
    at = {"first": 0, "enc-last": 31, "body": 40, "tag-last": size - 1}[where]
    _refused(lambda: worker.open(_flip(sealed, at)))


@pytest.mark.parametrize("cut", [1, 16, -1])
def test_a_cut_seal_does_not_open(worker: Worker, cut: int) -> None:
    raw = _unb64(worker.seal())
    _refused(lambda: worker.open(_b64(raw[:cut])))


@pytest.mark.parametrize("text", ["", "a", "not base64 at all!", "é" * 8, "AAAA" * 20])
def test_garbage_does_not_open(worker: Worker, text: str) -> None:
    _refused(lambda: worker.open(text))


def test_an_oversize_seal_is_refused_before_it_is_opened(worker: Worker) -> None:
    big = [ProviderCredentials("openai", api_key=SECRET + "x" * MAX_SEALED_CHARS)]
    sealed = worker.seal(big)
    assert len(sealed) > MAX_SEALED_CHARS
    error = _refused(lambda: worker.open(sealed))
    assert "too large" in str(error)
    # The limit is in characters of the sealed text, checked before any decryption.
    error = _refused(lambda: worker.open("A" * (MAX_SEALED_CHARS + 1)))
    assert "too large" in str(error)


def test_a_seal_just_under_the_limit_opens(worker: Worker) -> None:
    overhead = len(worker.seal([ProviderCredentials("openai", api_key="k")])) - 1
    key = "k" * ((MAX_SEALED_CHARS - overhead) * 3 // 4 - 8)
    sealed = worker.seal([ProviderCredentials("openai", api_key=key)])
    assert MAX_SEALED_CHARS - 16 < len(sealed) <= MAX_SEALED_CHARS
    assert worker.open(sealed)[0].api_key == key


def _seal_body(worker: Worker, body: bytes) -> str:
    """What a client that does not follow the format might seal: any bytes at all."""
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    public_key = worker.private_key.public_key()
    return _b64(suite.encrypt(body, public_key, info=seal_info(SEAL_ID, EXPIRES_AT)))


@pytest.mark.parametrize(
    "body",
    [
        b"not json " + SECRET.encode(),
        b'{"provider": "openai", "api_key": "' + SECRET.encode() + b'"}',
        b'["' + SECRET.encode() + b'"]',
        b'[{"provider": "acme", "api_key": "' + SECRET.encode() + b'"}]',
        b'[{"provider": "openai", "api_key": "' + SECRET.encode() + b'", "extra": 1}]',
        b'[{"provider": "openai", "api_key": ""}]',
        b"[{}]",
    ],
)
def test_a_seal_that_holds_no_credentials_list_is_refused(worker: Worker, body: bytes) -> None:
    error = _refused(lambda: worker.open(_seal_body(worker, body)))
    assert "not a list of provider credentials" in str(error)


@pytest.mark.parametrize(
    "public_key", ["", "not-a-key", _b64(b"\x01" * 31), _b64(b"\x01" * 33), "é" * 43]
)
def test_sealing_to_something_that_is_no_x25519_key_fails(public_key: str) -> None:
    with pytest.raises(SealError) as info:
        seal_credentials(CREDENTIALS, public_key=public_key, seal_id=SEAL_ID, expires_at=EXPIRES_AT)
    assert "not an X25519 key" in str(info.value)
    assert SECRET not in str(info.value) + repr(info.value)


def test_a_seal_error_is_a_value_error_with_no_key_in_its_repr() -> None:
    assert issubclass(SealError, ValueError)
    assert SECRET not in repr(CREDENTIALS) + str(CREDENTIALS)
    assert "openai" in repr(CREDENTIALS[0])  # the provider still shows
