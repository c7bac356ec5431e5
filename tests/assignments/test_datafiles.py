"""assignments/datafiles.py: the one way to touch files under DATA_ROOT refuses links (in any
component), paths outside the expected folder, '..', FIFOs/devices and hard-linked files."""

import os
import socket
from pathlib import Path

import pytest

from assignments.datafiles import (
    Entry,
    PathOutsideDataRoot,
    UnsafePath,
    from_data_root,
    is_file_confined,
    listdir_confined,
    mkdir_confined,
    open_confined,
    read_confined,
    relative_to_data_root,
    replace_confined,
    stat_confined,
    tail_confined,
    write_confined,
)

SECRET = b"SECRET-do-not-serve-4711\n"


@pytest.fixture
def run_folder(data_root: Path) -> Path:
    folder = data_root / "proj_uid___A001_X1_X2" / "Calibration_X3"
    folder.mkdir(parents=True)
    (folder / "run1.output.txt").write_bytes(b"line 1\nline 2\n")
    return folder


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.txt"  # tmp_path is not below DATA_ROOT
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def test_a_regular_file_inside_is_read(run_folder):
    with open_confined("run1.output.txt", base=run_folder) as handle:
        assert handle.read() == b"line 1\nline 2\n"
    assert read_confined(run_folder / "run1.output.txt", base=run_folder) == b"line 1\nline 2\n"
    assert tail_confined("run1.output.txt", base=run_folder, size=7) == b"line 2\n"
    with open_confined("run1.output.txt", base=run_folder, mode="r") as handle:
        assert handle.readline() == "line 1\n"
    assert stat_confined("run1.output.txt", base=run_folder).st_size == 14
    assert is_file_confined("run1.output.txt", base=run_folder)


def test_a_link_as_the_last_component_is_refused(run_folder, secret):
    (run_folder / "run2.output.txt").symlink_to(secret)
    with pytest.raises(UnsafePath, match="is a link"):
        open_confined("run2.output.txt", base=run_folder)
    with pytest.raises(UnsafePath, match="is a link"):
        stat_confined("run2.output.txt", base=run_folder)
    assert not is_file_confined("run2.output.txt", base=run_folder)


def test_a_link_to_a_file_inside_is_refused_too(run_folder):
    (run_folder / "alias.txt").symlink_to(run_folder / "run1.output.txt")
    with pytest.raises(UnsafePath, match="is a link"):
        read_confined("alias.txt", base=run_folder)


def test_a_link_in_a_middle_component_is_refused(run_folder, secret):
    (run_folder / "plots").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(UnsafePath, match="plots is a link"):
        read_confined("plots/secret.txt", base=run_folder)
    with pytest.raises(UnsafePath, match="plots is a link"):
        listdir_confined("plots", base=run_folder)
    with pytest.raises(UnsafePath, match="plots is a link"):
        write_confined("plots/new.txt", b"x", base=run_folder)
    assert not (secret.parent / "new.txt").exists()


def test_a_link_above_the_base_is_refused(data_root, secret, tmp_path):
    """The walk starts at DATA_ROOT: a MOUS folder replaced by a link fails like any other."""
    (tmp_path / "outside" / "Calibration_X3").mkdir()
    (tmp_path / "outside" / "Calibration_X3" / "run1.output.txt").write_bytes(SECRET)
    (data_root / "linked_mous").symlink_to(tmp_path / "outside", target_is_directory=True)
    base = data_root / "linked_mous" / "Calibration_X3"
    with pytest.raises(UnsafePath, match="linked_mous is a link"):
        read_confined("run1.output.txt", base=base)


@pytest.mark.parametrize("path", ["../run1.output.txt", "sub/../../x", "..", "./../x"])
def test_dotdot_is_refused(run_folder, path):
    (run_folder / "sub").mkdir()
    with pytest.raises(UnsafePath, match=r"'\.\.' is not allowed"):
        read_confined(path, base=run_folder)


def test_an_absolute_path_outside_is_refused(run_folder, secret, data_root):
    with pytest.raises(UnsafePath, match="outside"):
        read_confined(secret, base=run_folder)
    with pytest.raises(UnsafePath, match="outside"):
        read_confined("/etc/hostname", base=run_folder)
    (data_root / "other.txt").write_bytes(b"another folder's file")
    with pytest.raises(UnsafePath, match="outside"):  # inside DATA_ROOT, outside the base
        read_confined(data_root / "other.txt", base=run_folder)


def test_a_base_outside_data_root_is_refused(secret):
    with pytest.raises(PathOutsideDataRoot):
        read_confined("secret.txt", base=secret.parent)


def test_a_fifo_is_refused_without_blocking(run_folder):
    os.mkfifo(run_folder / "run3.output.txt")
    with pytest.raises(UnsafePath, match="a FIFO"):
        read_confined("run3.output.txt", base=run_folder)
    with pytest.raises(UnsafePath, match="a FIFO"):
        write_confined("run3.output.txt", b"x", base=run_folder)


def test_a_socket_and_a_folder_are_not_files(run_folder, monkeypatch):
    monkeypatch.chdir(run_folder)  # a socket's full path would be over the 108-byte limit
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("s.sock")
        with pytest.raises(UnsafePath, match="a socket"):
            read_confined("s.sock", base=run_folder)
    (run_folder / "cal.tbl").mkdir()
    with pytest.raises(UnsafePath, match="a folder"):
        read_confined("cal.tbl", base=run_folder)


def test_a_device_is_refused(run_folder):
    # The suite runs as root (CI and `make test` here), so mknod works.
    os.mknod(run_folder / "dev", 0o600 | 0o020000, os.makedev(1, 3))  # S_IFCHR: /dev/null
    with pytest.raises(UnsafePath, match="a device"):
        read_confined("dev", base=run_folder)


def test_a_hard_linked_file_is_refused(run_folder, secret):
    """A hard link cannot be told from the original by name: files with st_nlink > 1 are not
    read (nothing the portal serves is hard-linked) and never written through."""
    os.link(secret, run_folder / "run4.output.txt")  # both under pytest's tmp: one filesystem
    with pytest.raises(UnsafePath, match="2 hard links"):
        read_confined("run4.output.txt", base=run_folder)
    with pytest.raises(UnsafePath, match="2 hard links"):
        write_confined("run4.output.txt", b"overwritten", base=run_folder)
    with pytest.raises(UnsafePath, match="2 hard links"):
        open_confined("run4.output.txt", base=run_folder, mode="ab")
    assert secret.read_bytes() == SECRET
    with open_confined("run4.output.txt", base=run_folder, allow_hardlinks=True) as handle:
        assert handle.read() == SECRET  # for callers that know a hard link is expected


def test_writes_never_follow_a_link(run_folder, secret):
    (run_folder / "run5.spec.json").symlink_to(secret)
    for exclusive in (False, True):
        with pytest.raises(UnsafePath, match="a link"):
            write_confined("run5.spec.json", b"{}", base=run_folder, exclusive=exclusive)
    with pytest.raises(UnsafePath, match="a link"):
        open_confined("run5.spec.json", base=run_folder, mode="ab")
    assert secret.read_bytes() == SECRET
    # replace_confined puts a new file in the link's place; the link's target is untouched.
    replace_confined("run5.spec.json", b"{}", base=run_folder)
    assert not (run_folder / "run5.spec.json").is_symlink()
    assert (run_folder / "run5.spec.json").read_bytes() == b"{}"
    assert secret.read_bytes() == SECRET
    # A dangling link (to where the worker would create a file) is refused as well.
    (run_folder / "run6.spec.json").symlink_to(secret.parent / "created-by-the-worker")
    with pytest.raises(UnsafePath, match="a link"):
        write_confined("run6.spec.json", b"{}", base=run_folder)
    assert not (secret.parent / "created-by-the-worker").exists()


def test_writes_create_overwrite_and_append(run_folder):
    write_confined("logs/a.txt", "first", base=run_folder)
    write_confined("logs/a.txt", b"2nd", base=run_folder)
    assert (run_folder / "logs" / "a.txt").read_bytes() == b"2nd"
    with pytest.raises(FileExistsError):
        write_confined("logs/a.txt", b"x", base=run_folder, exclusive=True)
    with open_confined("logs/a.txt", base=run_folder, mode="ab") as handle:
        handle.write(b"+more")
    assert (run_folder / "logs" / "a.txt").read_bytes() == b"2nd+more"
    mkdir_confined("deep/er", base=run_folder)
    assert (run_folder / "deep" / "er").is_dir()


def test_listing_shows_links_as_links_and_never_follows_them(run_folder, secret):
    (run_folder / "escape").symlink_to(secret.parent, target_is_directory=True)
    (run_folder / "cal.tbl").mkdir()
    entries = listdir_confined(base=run_folder)
    assert entries == [
        Entry("cal.tbl", "folder", 0),
        Entry("escape", "link", 0),
        Entry("run1.output.txt", "file", 14),
    ]
    with pytest.raises(UnsafePath):
        listdir_confined("escape", base=run_folder)


def test_missing_files_are_file_not_found(run_folder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_confined("nothing.txt", base=run_folder)
    with pytest.raises(FileNotFoundError):
        read_confined("no/such/folder.txt", base=run_folder)
    assert not is_file_confined("nothing.txt", base=run_folder)


def test_paths_are_stored_relative_to_data_root(data_root, run_folder, secret):
    rel = relative_to_data_root(run_folder / "run1.output.txt")
    assert rel == "proj_uid___A001_X1_X2/Calibration_X3/run1.output.txt"
    assert from_data_root(rel) == run_folder / "run1.output.txt"
    assert from_data_root(str(run_folder)) == run_folder  # rows stored with absolute paths
    assert relative_to_data_root(data_root) == ""
    with pytest.raises(PathOutsideDataRoot):
        relative_to_data_root(secret)
    with pytest.raises(PathOutsideDataRoot):
        from_data_root("/etc/passwd")
    with pytest.raises(UnsafePath):
        from_data_root("../outside")


def test_a_base_relative_to_data_root_and_a_listing_of_data_root(data_root, run_folder):
    base = "proj_uid___A001_X1_X2/Calibration_X3"  # as stored: relative to DATA_ROOT
    assert read_confined("run1.output.txt", base=base) == b"line 1\nline 2\n"
    assert [e.name for e in listdir_confined(base=data_root)] == ["proj_uid___A001_X1_X2"]
    with pytest.raises(UnsafePath, match="DATA_ROOT itself"):
        read_confined(data_root, base=data_root)
