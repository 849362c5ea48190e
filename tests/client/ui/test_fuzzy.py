"""Fuzzy matching: the query's characters in order; file names and word starts rank first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from plancast.client.ui.fuzzy import fuzzy_filter, match

PATHS = [
    "docs/greeting.md",
    "src/app.py",
    "src/greet.py",
    "src/legacy/regret.py",
    "tests/test_greet.py",
    "src/g_r_e_e_t.py",
]


def ranked(query: str) -> list[str]:
    return [m.text for m in fuzzy_filter(query, PATHS)]


def test_a_file_name_prefix_wins_then_a_substring_then_spread_letters() -> None:
    assert ranked("greet")[:2] == ["src/greet.py", "docs/greeting.md"]
    assert ranked("greet")[2] == "tests/test_greet.py"
    # letters spread out: at word starts inside the file name beats across folders
    assert ranked("greet")[-2:] == ["src/g_r_e_e_t.py", "src/legacy/regret.py"]
    assert "src/app.py" not in ranked("greet")


def test_word_starts_beat_letters_in_the_middle_of_words() -> None:
    assert ranked("tg")[0] == "tests/test_greet.py"


def test_smart_case() -> None:
    assert match("App", "src/app.py") is None
    assert match("app", "src/App.py") is not None


def test_an_empty_query_keeps_the_order_and_the_limit() -> None:
    assert [m.text for m in fuzzy_filter("", PATHS, limit=3)] == PATHS[:3]
    assert len(fuzzy_filter("e", PATHS, limit=2)) == 2


@given(st.text(alphabet="abc/._", max_size=6), st.text(alphabet="abc/._", max_size=12))
def test_positions_point_at_the_query_in_order(query: str, candidate: str) -> None:
    found = match(query, candidate)
    is_subsequence = _subsequence(query.lower(), candidate.lower())
    assert (found is not None) == is_subsequence
    if found is not None and query:
        assert [candidate[p].lower() for p in found.positions] == list(query.lower())
        assert list(found.positions) == sorted(set(found.positions))


def _subsequence(query: str, text: str) -> bool:
    it = iter(text)
    return all(ch in it for ch in query)
