"""offgrid.outputs.transcript: the output formats and choosing one."""

from __future__ import annotations

import json
import os
import re

import pytest

from offgrid.outputs import transcript
from offgrid.engines.base import Segment
from offgrid.errors import UsageError

SEGMENTS = [Segment(0.0, 1.5, " Hello world."), Segment(61.25, 3723.4567, "Second\tline")]


def test_timestamp():
    assert transcript.timestamp(0) == "00:00:00.000"
    assert transcript.timestamp(3723.4567) == "01:02:03.457"
    assert transcript.timestamp(59.9996, ",") == "00:01:00,000"
    assert transcript.timestamp(-0.5) == "00:00:00.000"


def test_txt_is_one_line_per_segment():
    assert transcript.to_txt(SEGMENTS) == "Hello world.\nSecond\tline\n"


def test_srt_numbering_and_timestamps():
    assert transcript.to_srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello world.\n\n"
        "2\n00:01:01,250 --> 01:02:03,457\nSecond\tline\n")


def test_vtt_header_and_cues():
    text = transcript.to_vtt(SEGMENTS)
    assert text.startswith("WEBVTT\n\n")
    assert re.findall(r"^\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d$", text, re.M) == [
        "00:00:00.000 --> 00:00:01.500", "00:01:01.250 --> 01:02:03.457"]


def test_tsv_in_milliseconds_one_line_each():
    assert transcript.to_tsv(SEGMENTS) == "start\tend\ttext\n0\t1500\tHello world.\n61250\t3723457\tSecond line\n"


def test_json_schema():
    document = json.loads(transcript.to_json(SEGMENTS, model="m", language="en",
                                             real_time_factor=0.5))
    assert document == {
        "model": "m", "language": "en", "real_time_factor": 0.5,
        "text": "Hello world. Second\tline",
        "segments": [{"id": 0, "start": 0.0, "end": 1.5, "text": "Hello world."},
                     {"id": 1, "start": 61.25, "end": 3723.457, "text": "Second\tline"}]}


def test_empty_transcripts():
    assert transcript.to_txt([]) == ""
    assert transcript.to_srt([]) == ""
    assert transcript.to_vtt([]) == "WEBVTT\n\n"
    assert json.loads(transcript.to_json([]))["segments"] == []


@pytest.mark.parametrize("requested, path, default, expected", [
    (None, None, None, "txt"),
    ("SRT", None, None, "srt"),
    (None, "talk.vtt", None, "vtt"),
    ("json", "talk.vtt", None, "json"),
    (None, "talk.unknown", None, "txt"),
    (None, None, "tsv", "tsv"),
    (None, "talk.srt", "tsv", "srt"),
])
def test_choose_format(requested, path, default, expected):
    assert transcript.choose_format(requested, path, default) == expected


def test_unknown_format_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown format 'docx'"):
        transcript.choose_format("docx", None)


def test_live_line():
    assert transcript.live_line(SEGMENTS[0], timestamps=True) == (
        "[00:00:00.000 --> 00:00:01.500]  Hello world.")
    assert transcript.live_line(SEGMENTS[0], timestamps=False) == "Hello world."


def test_write_file_is_atomic_and_normal(tmp_path):
    path = tmp_path / "out.srt"
    transcript.write_file(path, "text\n")
    assert path.read_text() == "text\n"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["out.srt"]


def test_write_file_into_a_missing_folder(tmp_path):
    with pytest.raises(Exception, match="cannot write"):
        transcript.write_file(tmp_path / "missing" / "out.txt", "x")
