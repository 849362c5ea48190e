"""scan(): targets as typed on the command line, and the reasons files are skipped."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from plancast.client.context import scan as scan_module
from plancast.client.context.scan import (
    FileText,
    FoundFile,
    ScanOptions,
    ScanResult,
    Skipped,
    find_project_files,
    format_size,
    looks_binary,
    read_files,
    scan,
)
from tests.client.context.context_helpers import git, git_init, write_tree

RECURSIVE = ScanOptions(recursive=True)


def paths(result: ScanResult) -> list[str]:
    return [f.path for f in result.files]


def reasons(result: ScanResult) -> dict[str, str]:
    return {s.path: s.reason for s in result.skipped}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write_tree(
        root,
        {
            ".gitignore": "build/\n*.log\n",
            "README.md": "# hi\n",
            "src/a.py": "print('a')\n",
            "src/b.py": "print('b')\n",
            "src/notes.txt": "n\n",
            "src/deep/c.py": "c\n",
            "src/deep/d.md": "d\n",
            "build/out.py": "o\n",
            "debug.log": "log\n",
            ".env": "KEY=1\n",
        },
    )
    return root


# -- targets ------------------------------------------------------------------------------------


def test_files_relative_to_a_subdirectory_cwd(project: Path) -> None:
    result = scan(project, ["a.py", "../README.md", "deep/c.py"], cwd=project / "src")
    assert paths(result) == ["README.md", "src/a.py", "src/deep/c.py"]
    found = result.files[1]
    assert found == FoundFile("src/a.py", len("print('a')\n"), root=project)
    assert found.abs_path == project / "src" / "a.py"
    assert result.skipped == []


def test_directory_needs_recursive(project: Path) -> None:
    result = scan(project, ["src"], cwd=project)
    assert result.files == []
    assert result.skipped == [Skipped("src", "is a directory (use -r)")]
    recursive = scan(project, ["src"], RECURSIVE, cwd=project)
    assert paths(recursive) == [
        "src/a.py",
        "src/b.py",
        "src/deep/c.py",
        "src/deep/d.md",
        "src/notes.txt",
    ]


def test_outside_and_missing_targets(project: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_text("x")
    result = scan(
        project, ["../elsewhere.txt", str(tmp_path / "elsewhere.txt"), "nope.py"], cwd=project
    )
    assert reasons(result) == {
        "../elsewhere.txt": "outside the project",
        str(tmp_path / "elsewhere.txt"): "outside the project",
        "nope.py": "does not exist",
    }


def test_ignored_file_named_explicitly_needs_force(project: Path) -> None:
    result = scan(project, ["debug.log", ".env", "build/out.py"], cwd=project)
    assert result.files == []
    assert reasons(result) == {
        ".env": "ignored by <default>:1 '.env' (dotenv file: API keys and passwords)",
        "build/out.py": "ignored by .gitignore:1 'build/' (matches the directory build/)",
        "debug.log": "ignored by .gitignore:2 '*.log'",
    }
    forced = scan(
        project, ["debug.log", ".env", "build/out.py"], ScanOptions(force=True), cwd=project
    )
    assert paths(forced) == [".env", "build/out.py", "debug.log"]


def test_force_on_an_ignored_directory_still_filters_inside(project: Path) -> None:
    write_tree(project, {"build/x.log": "", "build/sub/y.py": ""})
    result = scan(project, ["build"], ScanOptions(recursive=True, force=True), cwd=project)
    assert paths(result) == ["build/out.py", "build/sub/y.py"]
    plain = scan(project, ["build"], RECURSIVE, cwd=project)
    assert reasons(plain) == {"build": "ignored by .gitignore:1 'build/'"}


def test_force_never_reaches_into_git_dir(project: Path) -> None:
    git_init(project)
    result = scan(
        project, [".git/HEAD", ".git"], ScanOptions(recursive=True, force=True), cwd=project
    )
    assert result.files == []
    assert set(reasons(result).values()) == {"never loadable (.git/)"}


def test_globs_only_match_loadable_files(project: Path) -> None:
    result = scan(project, ["src/*.py", "**/*.md", "*.log"], cwd=project)
    assert paths(result) == ["README.md", "src/a.py", "src/b.py", "src/deep/d.md"]
    assert reasons(result) == {"*.log": "no loadable file matches"}


def test_glob_relative_to_cwd_and_recursive_directory_match(project: Path) -> None:
    result = scan(project, ["*.py"], cwd=project / "src")
    assert paths(result) == ["src/a.py", "src/b.py"]
    deep = scan(project, ["s*/d*"], RECURSIVE, cwd=project)
    assert paths(deep) == ["src/deep/c.py", "src/deep/d.md"]
    flat = scan(project, ["s*/d*"], cwd=project)
    assert flat.files == [] and reasons(flat) == {"s*/d*": "no loadable file matches"}


def test_literal_name_with_brackets_is_not_a_glob(tmp_path: Path) -> None:
    write_tree(tmp_path, {"pages/[id].tsx": "x", "pages/i.tsx": "y"})
    assert paths(scan(tmp_path, ["pages/[id].tsx"], cwd=tmp_path)) == ["pages/[id].tsx"]


def test_sorted_and_deduplicated(project: Path) -> None:
    result = scan(project, ["src/b.py", "src", "src/a.py", "src/*.py"], RECURSIVE, cwd=project)
    assert paths(result) == sorted(set(paths(result)))
    assert paths(result).count("src/a.py") == 1


def test_find_project_files_is_the_whole_tree(project: Path) -> None:
    result = find_project_files(project)
    assert paths(result) == [
        ".gitignore",
        "README.md",
        "src/a.py",
        "src/b.py",
        "src/deep/c.py",
        "src/deep/d.md",
        "src/notes.txt",
    ]
    assert paths(result) == paths(scan(project, ["."], RECURSIVE, cwd=project))
    assert paths(find_project_files(project, ScanOptions(default_ignores=False)))[0] == ".env"


def test_tracked_file_under_ignored_dir_via_directory_target(project: Path) -> None:
    git_init(project)
    git(project, "add", "-f", "build/out.py")
    write_tree(project, {"build/untracked.py": ""})
    result = scan(project, ["build"], RECURSIVE, cwd=project)
    assert paths(result) == ["build/out.py"]
    assert paths(scan(project, ["build/out.py"], cwd=project)) == ["build/out.py"]
    assert (
        "build/"
        in reasons(scan(project, ["build/untracked.py"], cwd=project))["build/untracked.py"]
    )


# -- skip reasons -------------------------------------------------------------------------------


def test_binary_and_oversize(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "bin.dat": b"abc\0def",
            "late-nul.txt": b"a" * 9000 + b"\0",
            "big.txt": b"x" * 2048,
            "ok.txt": b"x" * 1024,
            "empty.txt": b"",
        },
    )
    result = find_project_files(tmp_path, ScanOptions(max_file_bytes=1024))
    assert paths(result) == ["empty.txt", "ok.txt"]
    assert reasons(result) == {
        "big.txt": "larger than 1 KiB (2 KiB)",
        "bin.dat": "binary",
        "late-nul.txt": "larger than 1 KiB (8.8 KiB)",
    }
    roomy = find_project_files(tmp_path)
    assert "late-nul.txt" in paths(roomy)  # NUL only after the first 8 KiB: text
    assert reasons(roomy) == {"bin.dat": "binary"}


def test_without_sniffing_only_type_and_size_are_checked(tmp_path: Path) -> None:
    write_tree(tmp_path, {"bin.dat": b"abc\0def", "big.txt": b"x" * 2048, "ok.txt": b"ok"})
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link.txt").symlink_to("ok.txt")
    options = ScanOptions(max_file_bytes=1024, sniff_binary=False)
    result = find_project_files(tmp_path, options)
    assert [(f.path, f.size) for f in result.files] == [
        ("bin.dat", 7),
        ("link.txt", 2),
        ("ok.txt", 2),
    ]
    assert reasons(result) == {"big.txt": "larger than 1 KiB (2 KiB)"}
    assert looks_binary(b"abc\0") and not looks_binary(b"a" * 9000 + b"\0")
    named = scan(tmp_path, ["pipe"], options, cwd=tmp_path)
    assert reasons(named) == {"pipe": "not a regular file"}


def test_non_utf8_content_is_loadable(tmp_path: Path) -> None:
    write_tree(tmp_path, {"latin1.txt": "café".encode("latin-1"), "bad.txt": b"\xff\xfe\xfa ok"})
    result = find_project_files(tmp_path)
    assert paths(result) == ["bad.txt", "latin1.txt"]
    assert result.skipped == []


def test_non_utf8_file_name_is_skipped(tmp_path: Path) -> None:
    os.makedirs(tmp_path, exist_ok=True)
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"x")
    result = find_project_files(tmp_path)
    assert result.files == []
    assert [s.reason for s in result.skipped] == ["name is not valid UTF-8"]


def test_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "p"
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    write_tree(root, {"real.txt": "r", ".env": "K=1", "dir/x.txt": "x"})
    (root / "out.txt").symlink_to(outside)
    (root / "in.txt").symlink_to(root / "real.txt")
    (root / "rel.txt").symlink_to("real.txt")
    (root / "broken.txt").symlink_to(root / "missing")
    (root / "dirlink").symlink_to(root / "dir")
    (root / "sneaky.txt").symlink_to(".env")
    result = find_project_files(root)
    assert paths(result) == ["dir/x.txt", "in.txt", "real.txt", "rel.txt"]
    assert reasons(result) == {
        "broken.txt": "broken symlink",
        "dirlink": "symlink to a directory (not followed)",
        "out.txt": "symlink to outside the project",
        "sneaky.txt": "symlink to an ignored file (.env: ignored by <default>:1 '.env' "
        "(dotenv file: API keys and passwords))",
    }
    via_link = scan(root, ["dirlink/x.txt", "out.txt"], cwd=root)
    assert reasons(via_link) == {
        "dirlink/x.txt": "beyond a symbolic link (dirlink)",
        "out.txt": "symlink to outside the project",
    }


def test_force_loads_a_symlink_to_an_ignored_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {".env": "K=1"})
    (tmp_path / "alias.txt").symlink_to(".env")
    plain = scan(tmp_path, ["alias.txt"], cwd=tmp_path)
    assert plain.files == [] and "symlink to an ignored file" in reasons(plain)["alias.txt"]
    forced = scan(tmp_path, ["alias.txt"], ScanOptions(force=True), cwd=tmp_path)
    assert paths(forced) == ["alias.txt"]


def test_root_reached_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write_tree(real, {"a.py": "a"})
    alias = tmp_path / "alias"
    alias.symlink_to(real)
    result = scan(alias, [str(alias / "a.py"), "a.py"], cwd=alias)
    assert paths(result) == ["a.py"] and result.skipped == []


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {"locked.txt": "x", "open.txt": "y"})
    real_open = os.open

    def deny(path: str | bytes, flags: int, *args: int) -> int:
        if os.fsdecode(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(scan_module.os, "open", deny)
    result = find_project_files(tmp_path)
    assert paths(result) == ["open.txt"]
    assert reasons(result) == {"locked.txt": "unreadable: Permission denied"}


def test_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "a").write_text("a")
    assert paths(find_project_files(tmp_path)) == ["a"]  # git does not list FIFOs either
    result = scan(tmp_path, ["pipe"], cwd=tmp_path)
    assert reasons(result) == {"pipe": "not a regular file"}


# -- deferred checks: the scan opens nothing, read_files checks in the open that reads --------

DEFERRED = ScanOptions(defer_checks=True)


def read_all(
    result: ScanResult, max_file_bytes: int = 1 << 20
) -> tuple[dict[str, str], dict[str, str]]:
    texts: dict[str, str] = {}
    refused: dict[str, str] = {}
    for got in read_files(result.files, max_file_bytes):
        if isinstance(got, FileText):
            texts[got.path] = got.text
        else:
            refused[got.path] = got.reason
    return texts, refused


@pytest.fixture
def awkward(tmp_path: Path) -> Path:
    """Files that may not be sent, each for a reason that needs the file itself, and links."""
    root = tmp_path / "p"
    (tmp_path / "outside.txt").write_text("o")
    write_tree(
        root,
        {
            "bin.dat": b"abc\0def",
            "big.txt": b"x" * 2048,
            "late-nul.txt": b"a" * 900 + b"\0",
            "ok.txt": b"ok\n",
            "empty.txt": b"",
            "latin1.txt": "café".encode("latin-1"),
            ".env": "K=1",
        },
    )
    (root / "in.txt").symlink_to("ok.txt")
    (root / "out.txt").symlink_to(tmp_path / "outside.txt")
    (root / "sneaky.txt").symlink_to(".env")
    (root / "binlink").symlink_to("bin.dat")
    return root


def test_a_deferred_scan_opens_nothing(awkward: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open
    opened: list[str] = []

    def recording_open(path: str | bytes, flags: int, *args: int, **kwargs: int) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(scan_module.os, "open", recording_open)
    result = find_project_files(awkward, ScanOptions(max_file_bytes=1024, defer_checks=True))
    # Ignore files and git's own are read; no file that may be sent.
    assert not {os.path.join(awkward, name) for name in os.listdir(awkward)} & set(opened)
    assert paths(result) == [
        "big.txt",
        "bin.dat",
        "binlink",
        "empty.txt",
        "in.txt",
        "late-nul.txt",
        "latin1.txt",
        "ok.txt",
    ]
    assert all(f.size is None for f in result.files)
    assert {f.path: f.target for f in result.files if f.target} == {
        "binlink": "bin.dat",
        "in.txt": "ok.txt",
    }
    # Symlinks are still decided by the scan (Rule 6).
    assert reasons(result) == {
        "out.txt": "symlink to outside the project",
        "sneaky.txt": "symlink to an ignored file (.env: ignored by <default>:1 '.env' "
        "(dotenv file: API keys and passwords))",
    }


def test_read_files_refuses_what_a_sniffing_scan_refuses(awkward: Path) -> None:
    options = ScanOptions(max_file_bytes=1024)
    sniffed = find_project_files(awkward, options)
    deferred = find_project_files(awkward, replace(options, defer_checks=True))
    texts, refused = read_all(deferred, options.max_file_bytes)
    assert sorted(texts) == paths(sniffed)
    assert refused | {s.path: s.reason for s in deferred.skipped} == reasons(sniffed)
    assert refused == {
        "big.txt": "larger than 1 KiB (2 KiB)",
        "bin.dat": "binary",
        "binlink": "binary",
        "late-nul.txt": "binary",
    }
    assert texts["in.txt"] == texts["ok.txt"] == "ok\n"  # read from the checked target
    assert texts["latin1.txt"] == "caf\ufffd"  # not UTF-8: replaced, never a crash
    assert texts["empty.txt"] == ""


def test_read_files_checks_the_file_as_it_is_when_read(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.txt": "a", "b.txt": "b", "c.txt": "c", "d.txt": "d"})
    (tmp_path / "secret.txt").write_text("s")
    result = find_project_files(tmp_path, DEFERRED)
    # Changed between the scan and the read:
    (tmp_path / "a.txt").write_bytes(b"now \0 binary")
    (tmp_path / "b.txt").unlink()
    (tmp_path / "b.txt").symlink_to(tmp_path / "secret.txt")  # must not be followed
    (tmp_path / "c.txt").unlink()
    os.mkfifo(tmp_path / "c.txt")  # must not block
    (tmp_path / "d.txt").unlink()
    texts, refused = read_all(result)
    assert refused["a.txt"] == "binary"
    assert refused["b.txt"].startswith("unreadable: ")
    assert refused["c.txt"] == "not a regular file"
    assert refused["d.txt"] == "unreadable: No such file or directory"
    assert texts == {"secret.txt": "s"}


def test_a_link_changed_after_the_scan_cannot_lead_out(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_tree(root, {"real.txt": "checked\n"})
    (tmp_path / "outside.txt").write_text("not yours\n")
    (root / "link.txt").symlink_to("real.txt")
    result = find_project_files(root, DEFERRED)
    (root / "link.txt").unlink()
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    texts, refused = read_all(result)
    assert texts == {"link.txt": "checked\n", "real.txt": "checked\n"} and refused == {}
    (root / "real.txt").unlink()
    (root / "real.txt").symlink_to(tmp_path / "outside.txt")  # the target itself swapped
    texts, refused = read_all(result)
    assert texts == {} and set(refused) == {"link.txt", "real.txt"}
    assert all(reason.startswith("unreadable: ") for reason in refused.values())


def test_read_files_refuses_a_file_that_grew_past_the_limit_while_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, {"grows.txt": b"x" * 3000, "shrinks.txt": b"y" * 10})
    real_fstat = os.fstat

    def stale_fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        fields = list(st)
        fields[6] = 100 if st.st_size == 3000 else 20  # st_size as an earlier moment saw it
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", stale_fstat)
    texts, refused = read_all(find_project_files(tmp_path, DEFERRED), 1024)
    assert refused == {"grows.txt": "larger than 1 KiB (grew while read)"}
    assert texts == {"shrinks.txt": "y" * 10}
    texts, refused = read_all(find_project_files(tmp_path, DEFERRED), 4096)
    assert texts["grows.txt"] == "x" * 3000  # grew, but stayed under the limit


def test_a_deferred_scan_with_overlapping_targets_lists_each_file_once(project: Path) -> None:
    targets = ["src/deep", "src", "src/a.py", "src/*.py", "README.md"]
    deferred = scan(project, targets, replace(RECURSIVE, defer_checks=True), cwd=project)
    assert paths(deferred) == paths(scan(project, targets, RECURSIVE, cwd=project))
    assert paths(deferred) == sorted(set(paths(deferred)))
    assert deferred.skipped == []


def test_a_deferred_scan_still_skips_names_that_are_not_utf8(tmp_path: Path) -> None:
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"x")
    (tmp_path / "ok.txt").write_text("ok")
    result = find_project_files(tmp_path, DEFERRED)
    assert paths(result) == ["ok.txt"]
    assert [s.reason for s in result.skipped] == ["name is not valid UTF-8"]


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="max_file_bytes"):
        ScanOptions(max_file_bytes=-1)
    assert format_size(1 << 20) == "1 MiB"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(10) == "10 bytes"
