"""A raw HTTP/2 client for attack tests (test_http2_attacks.py): frames built
with Debian's python3-hyperframe and header blocks with python3-hpack, sent
as they are, so a test can send what a well-behaved library would refuse to
(CONTINUATION without end, resets in a burst, floods of PING or SETTINGS).
Prior knowledge (h2c) on a plain listener.
"""
import socket
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CANCEL, REFUSED_STREAM, PROTOCOL_ERROR = 0x8, 0x7, 0x1
NO_ERROR, ENHANCE_YOUR_CALM = 0x0, 0xB

__all__ = ["RawH2", "ContinuationFrame", "DataFrame", "GoAwayFrame", "HeadersFrame",
           "PingFrame", "RstStreamFrame", "SettingsFrame", "WindowUpdateFrame"]


class RawH2:
    """One connection: the preface and an empty SETTINGS are sent on open
    (window: the client's SETTINGS_INITIAL_WINDOW_SIZE when given)."""

    def __init__(self, port, window=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.closed = False
        self.next_id = 1
        settings = SettingsFrame(0)
        if window is not None:
            settings.settings[SettingsFrame.INITIAL_WINDOW_SIZE] = window
        self.sock.sendall(PREFACE + settings.serialize())

    def close(self):
        self.sock.close()

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def stream_id(self):
        sid = self.next_id
        self.next_id += 2
        return sid

    def block(self, path="/healthz", method="GET", extra=(), authority="127.0.0.1"):
        """An HPACK header block for a request."""
        return self.enc.encode([(":method", method), (":scheme", "http"), (":path", path),
                                (":authority", authority), *extra])

    def request(self, path="/healthz", method="GET", extra=(), end=True, sid=None):
        """HEADERS of a new request (END_STREAM unless end is False); returns its id."""
        sid = sid or self.stream_id()
        f = HeadersFrame(sid, self.block(path, method, extra))
        f.flags.add("END_HEADERS")
        if end:
            f.flags.add("END_STREAM")
        self.send(f)
        return sid

    def frames(self, timeout=5.0, until=None):
        """Frames received until `until(frame)` is true, the connection
        closes, or timeout seconds pass; HEADERS blocks are decoded into
        frame.fields. SETTINGS from the server are acknowledged."""
        out = []
        deadline = time.monotonic() + timeout
        while not self.closed:
            while len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                f.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                if isinstance(f, HeadersFrame):
                    f.fields = dict((k.decode() if isinstance(k, bytes) else k,
                                     v.decode() if isinstance(v, bytes) else v)
                                    for k, v in self.dec.decode(f.data))
                if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                    ack = SettingsFrame(0)
                    ack.flags.add("ACK")
                    try:
                        self.send(ack)
                    except OSError:
                        pass
                out.append(f)
                if until and until(f):
                    return out
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return out
            except OSError:
                data = b""
            if not data:
                self.closed = True
            self.buf += data
        return out


def goaway_of(frames):
    g = [f for f in frames if isinstance(f, GoAwayFrame)]
    return g[-1] if g else None


def response_status(frames, sid):
    for f in frames:
        if isinstance(f, HeadersFrame) and f.stream_id == sid:
            return int(f.fields[":status"])
    return None


def resets(frames):
    return {f.stream_id: f.error_code for f in frames if isinstance(f, RstStreamFrame)}
