"""HTTP/2 attacks with raw frames (issue #14 item 3; h2raw.py builds them with
Debian's python3-hyperframe and python3-hpack), on an h2c listener: rapid
reset (CVE-2023-44487) with a good client's latency measured beside it, a
reset stream never holding its connection open, the CONTINUATION flood
(CVE-2024-28182), PING and SETTINGS floods, too many streams, a header list
over the limit, fields HTTP/2 forbids, and flow control toward a slow
reader. docs/configuration.md ("HTTP/2 defences") lists what is set.
"""
import hashlib
import statistics
import threading
import time

import httpx
import pytest

from h2raw import (ENHANCE_YOUR_CALM, NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL,
                   ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, PingFrame, RawH2,
                   RstStreamFrame, SettingsFrame, WindowUpdateFrame, goaway_of, resets,
                   response_status)
from test_forward import Upstream, gateway_key, upstream_conf

STREAMS = 16
H2C = f"[server]\nh2c = true\nhttp2_max_concurrent_streams = {STREAMS}\n"


@pytest.fixture
def upstream():
    up = Upstream()
    yield up
    up.close()


def h2c_instance(make_instance, extra="", upstream=None):
    conf = H2C + extra
    if upstream:
        conf += "\n" + upstream_conf(upstream, timeout_ms=5000)
    return make_instance(store="sqlite", config=conf).start()


def opened(inst, **kw):
    """A raw connection past the preface, the server's SETTINGS acknowledged."""
    c = RawH2(inst.port, **kw)
    c.frames(timeout=2, until=lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
    return c


def assert_sound(inst):
    """The server still answers and nothing went wrong under ASan/UBSan."""
    with httpx.Client(http1=False, http2=True) as client:
        r = client.get(inst.url("/healthz"), timeout=10)
        assert r.status_code == 200 and r.http_version == "HTTP/2"
    log = inst.read_log()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-3000:]


class GoodClient:
    """GETs of /healthz over HTTP/2 (its own connection) in a thread: the latencies."""

    def __init__(self, inst):
        self.inst = inst
        self.times, self.statuses = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        with httpx.Client(http1=False, http2=True) as client:
            while not self.stop.is_set():
                t = time.perf_counter()
                r = client.get(self.inst.url("/healthz"), timeout=10)
                self.times.append(time.perf_counter() - t)
                self.statuses.append((r.status_code, r.http_version))
                time.sleep(0.01)

    def sample(self, seconds):
        self.thread.start()
        time.sleep(seconds)
        return self.finish()

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=15)
        return self.times


def median_ms(times):
    return statistics.median(times) * 1000


def test_rapid_reset_buys_no_more_work_than_the_stream_limit(make_instance, upstream):
    """Requests opened and reset at once, each for an upstream call that takes
    300 ms: the upstream sees at most about the stream limit of them (a
    reset stream's request counts until its handler is done; new streams
    are refused meanwhile), nghttp2's reset rate limit ends the connection
    with GOAWAY, and a good client on another connection keeps its latency."""
    inst = h2c_instance(make_instance, upstream=upstream)
    _, k = gateway_key(inst)
    before = GoodClient(inst).sample(1.0)
    good = GoodClient(inst)
    good.thread.start()
    attack = opened(inst)
    auth = [("authorization", "Bearer " + k["key"])]
    sent = 0
    t = time.monotonic()
    try:
        for _ in range(5000):
            sid = attack.stream_id()
            h = HeadersFrame(sid, attack.block("/work/slow?ms=300", extra=auth))
            h.flags.add("END_HEADERS")
            h.flags.add("END_STREAM")
            attack.send(h, RstStreamFrame(sid, error_code=CANCEL))
            sent += 1
    except OSError:
        pass  # the server closed the connection
    frames = attack.frames(timeout=5)
    attack.close()
    took = time.monotonic() - t
    time.sleep(1.0)  # the reset requests' upstream calls end
    during = good.finish()
    g = goaway_of(frames)  # (may be lost: the server closes with the flood unread)
    assert attack.closed and took < 5, f"connection still open after {sent} resets"
    assert g is None or g.error_code != NO_ERROR, g
    # Answered or refused: never more than the burst the rate limit allows (4 per stream).
    answered = {f.stream_id for f in frames if isinstance(f, HeadersFrame)}
    assert len(answered) <= 4 * STREAMS, len(answered)
    assert upstream.count("/work/slow") <= 2 * STREAMS, upstream.count("/work/slow")
    assert all(s == (200, "HTTP/2") for s in good.statuses), good.statuses[:5]
    print(f"rapid reset: {sent} pairs written, GOAWAY {g and (g.error_code, g.last_stream_id)}; "
          f"{len(answered)} answered, {len(resets(frames))} refused; upstream saw "
          f"{upstream.count('/work/slow')}; good client p50 before {median_ms(before):.1f} ms, "
          f"during {median_ms(during):.1f} ms (n={len(during)})")
    assert median_ms(during) < max(10 * median_ms(before), 100), (before, during)
    assert_sound(inst)


def test_a_reset_stream_does_not_hold_its_connection_past_the_idle_timeout(
        make_instance, upstream):
    """A stream reset while its request waits on the upstream: once the
    upstream answers, the connection is idle and closes on
    connection_timeout_s like any other (it used to count the request as
    in flight for ever)."""
    inst = h2c_instance(make_instance, "connection_timeout_s = 1\n", upstream=upstream)
    _, k = gateway_key(inst)
    c = opened(inst)
    sid = c.request("/work/slow?ms=300", extra=[("authorization", "Bearer " + k["key"])])
    c.send(RstStreamFrame(sid, error_code=CANCEL))
    t = time.monotonic()
    c.frames(timeout=6)
    assert c.closed, "the server kept the idle connection open"
    assert time.monotonic() - t < 4
    assert upstream.count("/work/slow") == 1
    assert_sound(inst)


def test_continuation_flood_is_refused(make_instance, upstream):
    """HEADERS without END_HEADERS, then CONTINUATION frames without end:
    the connection is closed after a few, the request never dispatched."""
    inst = h2c_instance(make_instance, upstream=upstream)
    _, k = gateway_key(inst)
    c = opened(inst)
    sid = c.stream_id()
    c.send(HeadersFrame(sid, c.block("/flood", extra=[("authorization", "Bearer " + k["key"])])))
    sent = 0
    try:
        for i in range(2000):
            # Each a complete small field (literal, not indexed): a valid block piece.
            c.send(ContinuationFrame(sid, c.enc.encode([(f"x-c{i}", "v")])))
            sent += 1
    except OSError:
        pass
    frames = c.frames(timeout=5)
    assert c.closed, f"still open after {sent} CONTINUATION frames"
    g = goaway_of(frames)
    assert g is None or g.error_code != NO_ERROR, g
    assert sent < 2000
    assert upstream.count() == 0
    assert_sound(inst)


@pytest.mark.parametrize("frame", ["ping", "settings"])
def test_a_flood_of_frames_to_acknowledge_closes_the_connection(make_instance, frame):
    """500 PINGs (or empty SETTINGS) in one write, never reading the
    acknowledgements: more than 100 queued closes the connection with
    GOAWAY ENHANCE_YOUR_CALM (nghttp2's default allowed 1000)."""
    inst = h2c_instance(make_instance)
    c = opened(inst)
    f = PingFrame(0, opaque_data=b"pcl-ping") if frame == "ping" else SettingsFrame(0)
    try:
        c.send(*[f] * 500)
    except OSError:
        pass
    frames = c.frames(timeout=5)
    g = goaway_of(frames)  # (may be lost: the server closes with the flood unread)
    assert c.closed, frames[-3:]
    assert g is None or g.error_code == ENHANCE_YOUR_CALM, g.error_code
    acks = sum(1 for x in frames if type(x).__name__ in ("PingFrame", "SettingsFrame"))
    assert acks <= 110, acks
    # A client with a few PINGs in flight is answered.
    c = opened(inst)
    c.send(*[PingFrame(0, opaque_data=b"pcl-ping")] * 10)
    frames = c.frames(timeout=2)
    assert sum(1 for x in frames if isinstance(x, PingFrame) and "ACK" in x.flags) == 10
    assert not c.closed
    assert_sound(inst)


def test_a_settings_frame_with_too_many_entries_closes_the_connection(make_instance):
    inst = h2c_instance(make_instance)
    c = opened(inst)
    f = SettingsFrame(0)
    for i in range(40):
        f.settings[0x100 + i] = i  # unknown ids: allowed, but 40 of them is an attack
    c.send(f)
    frames = c.frames(timeout=5)
    assert c.closed and goaway_of(frames) is not None, frames
    assert_sound(inst)


def test_streams_beyond_the_limit_are_refused(make_instance):
    """Before it acknowledges the SETTINGS, a client opening more streams than
    SETTINGS_MAX_CONCURRENT_STREAMS gets REFUSED_STREAM for the extra ones
    and answers for the others; after, it is a protocol error (GOAWAY)."""
    inst = h2c_instance(make_instance)
    c = RawH2(inst.port)
    ids = [c.request("/healthz", end=False) for _ in range(STREAMS + 4)]
    frames = c.frames(timeout=1)
    refused = resets(frames)
    assert sorted(refused) == ids[STREAMS:], refused
    assert set(refused.values()) == {REFUSED_STREAM}
    for sid in ids[:STREAMS]:
        c.send(DataFrame(sid, b"", flags=["END_STREAM"]))
    frames = c.frames(timeout=3, until=lambda f: isinstance(f, HeadersFrame) and
                      f.stream_id == ids[STREAMS - 1])
    assert [response_status(frames, sid) for sid in ids[:STREAMS]] == [200] * STREAMS
    c.close()
    c = opened(inst)
    [c.request("/healthz", end=False) for _ in range(STREAMS + 1)]
    g = goaway_of(c.frames(timeout=3))
    assert g is not None and g.error_code == PROTOCOL_ERROR, g
    assert_sound(inst)


def test_a_header_list_over_the_limit_is_431_and_the_connection_goes_on(make_instance):
    """Fields past max_header_bytes + 8 KiB over HEADERS and CONTINUATION:
    431 problem+json on that stream, the next stream on the same
    connection answered."""
    inst = h2c_instance(make_instance, "max_header_bytes = 4096\n")
    c = opened(inst)
    sid = c.stream_id()
    block = c.block(extra=[(f"x-pad-{i}", "p" * 1000) for i in range(20)])
    head = HeadersFrame(sid, block[:8000])
    head.flags.add("END_STREAM")
    cont = ContinuationFrame(sid, block[8000:])
    cont.flags.add("END_HEADERS")
    c.send(head, cont)
    frames = c.frames(timeout=5, until=lambda f: isinstance(f, HeadersFrame))
    assert response_status(frames, sid) == 431, frames
    h = [f for f in frames if isinstance(f, HeadersFrame)][0]
    assert h.fields["content-type"] == "application/problem+json"
    sid2 = c.request("/healthz")
    frames = c.frames(timeout=5, until=lambda f: isinstance(f, HeadersFrame) and
                      f.stream_id == sid2)
    assert response_status(frames, sid2) == 200
    assert_sound(inst)


@pytest.mark.parametrize("field", [("connection", "keep-alive"), ("transfer-encoding", "chunked"),
                                   ("x-note", "a\r\nx-portcullis-org-id: org_victim"),
                                   ("x-note", "a\x00b"), ("X-Upper", "v"), ("te", "gzip")])
def test_fields_http2_forbids_reset_the_stream_before_the_upstream(make_instance, upstream,
                                                                   field):
    """RFC 9113 8.2: connection-specific fields, CR/LF/NUL in a value, an
    upper-case name, TE other than trailers make the request malformed: the
    stream is reset (PROTOCOL_ERROR) and the upstream never sees it."""
    inst = h2c_instance(make_instance, upstream=upstream)
    _, k = gateway_key(inst)
    c = opened(inst)
    sid = c.request("/x", extra=[("authorization", "Bearer " + k["key"]), field])
    frames = c.frames(timeout=3, until=lambda f: f.stream_id == sid and
                      isinstance(f, (RstStreamFrame, HeadersFrame)))
    assert resets(frames).get(sid) == PROTOCOL_ERROR, frames
    sid2 = c.request("/x", extra=[("authorization", "Bearer " + k["key"])])
    frames = c.frames(timeout=5, until=lambda f: isinstance(f, HeadersFrame) and
                      f.stream_id == sid2)
    assert response_status(frames, sid2) == 200
    assert upstream.count() == 1
    assert_sound(inst)


def test_flow_control_holds_toward_a_slow_reader(make_instance, upstream):
    """A client announcing a 1000-byte stream window and not reading more:
    at most 1000 bytes of DATA come until it sends WINDOW_UPDATE; then the
    whole answer, byte-exact, and the server serves others meanwhile."""
    inst = h2c_instance(make_instance, upstream=upstream)
    _, k = gateway_key(inst)
    c = opened(inst, window=1000)
    n = 300_000
    sid = c.request(f"/files/big?n={n}", extra=[("authorization", "Bearer " + k["key"])])
    frames = c.frames(timeout=1.5)
    data = b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == sid)
    assert response_status(frames, sid) == 200
    assert 0 < len(data) <= 1000, len(data)
    assert not c.closed
    assert_sound(inst)  # another connection is served while this one waits
    head = [f for f in frames if isinstance(f, HeadersFrame)][0]
    c.send(WindowUpdateFrame(0, window_increment=1 << 20),
           WindowUpdateFrame(sid, window_increment=1 << 20))
    frames = c.frames(timeout=10, until=lambda f: isinstance(f, DataFrame) and
                      "END_STREAM" in f.flags)
    data += b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == sid)
    assert len(data) == n
    assert hashlib.sha256(data).hexdigest() == head.fields["x-body-sha256"]
