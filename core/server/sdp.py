"""Codec choice in SDP: every participant of a room sends and receives the same codecs.

A forwarded frame can only be sent to a viewer whose end negotiated the
publisher's codec. The room server therefore moves the room's video codec
(``[server] videoCodec``: VP8, or H264) and Opus to the front of every m-line
of an offer before answering it: aiortc answers in the offer's order, and a
browser sends with the first codec of the answer.
"""

from __future__ import annotations

import re

from ..errors import RecfwError

#: Video codecs the server can forward (aiortc's).
VIDEO_CODECS = ("VP8", "H264")
AUDIO_CODEC = "opus"

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/")
_CODEC_LINE = re.compile(r"^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ \t]")
_FMTP_APT = re.compile(r"^a=fmtp:(\d+) .*\bapt=(\d+)")


def _sections(sdp: str) -> list[list[str]]:
    sections: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections


def prefer_codecs(sdp: str, video_codec: str) -> str:
    """``sdp`` with ``video_codec`` (and its RTX) first on every video m-line and Opus first
    on every audio m-line. Raise :class:`RecfwError` when an m-line lacks the codec."""
    out: list[str] = []
    for index, section in enumerate(_sections(sdp)):
        if not section or not section[0].startswith("m="):
            out.extend(section)
            continue
        head = section[0].split()
        kind = head[0][2:]
        wanted = {"video": video_codec, "audio": AUDIO_CODEC}.get(kind)
        port = head[1] if len(head) > 1 else "0"
        if wanted is None or port == "0" or len(head) < 4:
            out.extend(section)
            continue
        names: dict[str, str] = {}
        apt: dict[str, str] = {}
        for line in section[1:]:
            m = _RTPMAP.match(line)
            if m:
                names[m.group(1)] = m.group(2).lower()
            m = _FMTP_APT.match(line)
            if m:
                apt[m.group(1)] = m.group(2)
        payloads = head[3:]
        first = [pt for pt in payloads if names.get(pt) == wanted.lower()]
        if not names:  # no codecs at all: not ours to judge (aiortc refuses such an offer)
            out.extend(section)
            continue
        if not first:
            offered = ", ".join(dict.fromkeys(n for n in names.values() if n != "rtx")) or "none"
            raise RecfwError(
                f"offer: m-line {index - 1} ({kind}) has no {wanted}, which this room "
                f"forwards (offered: {offered})"
            )
        first += [pt for pt in payloads if apt.get(pt) in first]
        order = first + [pt for pt in payloads if pt not in first]
        out.append(" ".join(head[:3] + order))
        out.extend(_reorder_codec_lines(section[1:], order))
    return "\r\n".join(out) + "\r\n"


def _reorder_codec_lines(lines: list[str], order: list[str]) -> list[str]:
    """The codec attribute lines in ``order`` (aiortc reads codecs in ``a=rtpmap`` order,
    browsers in the m-line's), put where the first of them was."""
    by_pt: dict[str, list[str]] = {}
    kept: list[str] = []
    at: int | None = None
    for line in lines:
        m = _CODEC_LINE.match(line)
        if m:
            if at is None:
                at = len(kept)
            by_pt.setdefault(m.group(1), []).append(line)
        else:
            kept.append(line)
    if at is None:
        return lines
    moved = [line for pt in order for line in by_pt.pop(pt, [])]
    moved += [line for rest in by_pt.values() for line in rest]
    return kept[:at] + moved + kept[at:]


def sending_codecs(sdp: str) -> list[tuple[str, str | None]]:
    """``(kind, first codec name in lower case)`` of each m-line of ``sdp`` (``None``: rejected)."""
    result: list[tuple[str, str | None]] = []
    for section in _sections(sdp):
        if not section or not section[0].startswith("m="):
            continue
        head = section[0].split()
        names = {}
        for line in section[1:]:
            m = _RTPMAP.match(line)
            if m:
                names[m.group(1)] = m.group(2).lower()
        first = head[3] if len(head) > 3 and head[1] != "0" else None
        result.append((head[0][2:], names.get(first) if first else None))
    return result
