"""A Realtime session takes the same write and read paths as an HTTP answer.

Its save goes through ``Engine.save`` (key and file locks, a disk error logged and
counted as ``unsaved``, a big session written off the event loop), and the files a
replay reads pass the store's guards (inside the cassettes folder, a regular file,
under the size limit): a symlink out of the folder is never read, so none of its
events can reach a client.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosedError

from seedtape.coordination.filelocks import LOCKS_FOLDER, lock_name, release_file_lock
from seedtape.sim.simulator import Simulator
from tests.conftest import OPENAI_KEY, RunningProxy
from tests.realtime._helpers import CLOSED_PORT_URL, delta_text, load, openai_client, session_files, text_session, wait_recorded

Factory = Callable[..., RunningProxy]


def test_an_unwritable_cassette_ends_the_session_whole_and_counts_it_unsaved(
    proxy_factory: Factory, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = proxy_factory(mode="record")
    folder = proxy.settings.cassettes_dir / "default"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder\n")  # every write fails (ENOTDIR), root included
    caplog.set_level(logging.ERROR, logger="seedtape")
    with openai_client(proxy.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        events = text_session(conn)
    assert events[-1]["type"] == "response.done" and delta_text(events), "the client got the whole session"
    deadline = time.monotonic() + 5
    while proxy.stats().get("unsaved", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = proxy.stats()
    assert stats["unsaved"] == 1 and stats["recorded"] == 0
    [line] = [r.getMessage() for r in caplog.records if "could not save" in r.getMessage()]
    assert str(folder) in line and "Not a directory" in line


def test_a_session_save_waits_for_the_key_file_lock_another_process_holds(proxy_factory: Factory, sim: Simulator) -> None:
    recorder = proxy_factory(mode="record")
    with openai_client(recorder.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        text_session(conn)
    wait_recorded(recorder, 1)
    [path] = session_files(recorder.settings.cassettes_dir)
    key = load(path)["key"]
    # Another process (here: this test) holds the key's write lock, as a second proxy
    # on the same folder would while it writes.
    lock = recorder.settings.cassettes_dir / LOCKS_FOLDER / lock_name("default", "write:" + key)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with openai_client(recorder.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
            text_session(conn)
        time.sleep(0.5)
        assert recorder.stats()["recorded"] == 1, "the second session's save waits for the lock"
        assert len(load(path)["episodes"]) == 1
    finally:
        release_file_lock(fd, lock)
    wait_recorded(recorder, 2)
    assert len(load(path)["episodes"]) == 2


def test_a_symlink_out_of_the_cassettes_folder_is_never_read_for_a_replay(
    proxy_factory: Factory, sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    recorder = proxy_factory(mode="record")
    with openai_client(recorder.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        text_session(conn)
    wait_recorded(recorder, 1)
    [path] = session_files(recorder.settings.cassettes_dir)
    outside = tmp_path_factory.mktemp("elsewhere") / path.name
    shutil.move(path, outside)
    path.symlink_to(outside)

    replayer = proxy_factory(mode="replay", upstream=CLOSED_PORT_URL)
    with openai_client(replayer.url, OPENAI_KEY).realtime.connect(model="gpt-realtime") as conn:
        event = conn.recv()
        assert event.type == "error", "no event of the file outside the folder reached the client"
        assert "no recorded Realtime session" in event.error.message
        with pytest.raises(ConnectionClosedError):
            conn.recv()
