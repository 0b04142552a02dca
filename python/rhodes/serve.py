"""rhodes.serve - a Python process serving its resource's exported functions.

The same conversation as govrt's runtime/invoke.c: connect to the agent's
socket (<run dir>/<resource>.sock, SOCK_SEQPACKET), say HELLO with role
server, then answer each CALL frame with a RESULT: the call's request frame
is decoded (rhodes.wire), its name and type string must match an export,
and the Python function is called with Python values (int, float, str,
bytes; an `o` parameter is a bytearray of its capacity, sent back whole;
a struct by value is a flat tuple of its scalar members, rhodes.wire.Layout,
and a function returning one returns such a tuple).
A function that raises OSError fails with its errno; any other exception
fails with EIO and its text. Reconnects when the agent comes back.
Not the calling side (rhodes.call).
"""
import errno
import os
import socket
import struct
import threading
import time

from . import wire


class Server:
    def __init__(self, resource=None):
        self.resource = resource or os.environ.get("GOV_RESOURCE", "")
        if not self.resource:
            raise ValueError("Server needs a resource (or GOV_RESOURCE)")
        self.exports = {}
        self.served = 0
        self.connected = threading.Event()
        self._stop = False

    def export(self, name, types, fn):
        why = wire.check_types(types)
        if why:
            raise ValueError("export %s: type string %r: %s" % (name, types, why))
        if not name or len(name) >= wire.GOV_NAME_MAX:
            raise ValueError("export %r: a name of 1..63 characters" % name)
        if name in self.exports:
            raise ValueError("export %s: listed twice" % name)
        self.exports[name] = (types, fn)

    def load_exports(self, path, namespace):
        """Exports every function an export list names, from namespace
        (a dict such as globals()); FILE:LINE in the error otherwise."""
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.split("\t", 1)[0].split("#", 1)[0].split()
                if not line:
                    continue
                if len(line) != 2:
                    raise ValueError("%s:%d: expected 'NAME TYPES'" % (path, n))
                if line[0] not in namespace:
                    raise ValueError("%s:%d: %s is not a function here" % (path, n, line[0]))
                try:
                    self.export(line[0], line[1], namespace[line[0]])
                except ValueError as e:
                    raise ValueError("%s:%d: %s" % (path, n, e)) from None

    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(2)
        s.connect(wire.run_path(self.resource, "sock"))
        s.send(wire.MSG.pack(wire.MSG_MAGIC, wire.WIRE_VERSION, wire.MSG_HELLO, 0,
                             wire.ROLE_SERVER, 0, 0, os.getpid(), 0,
                             self.resource.encode(), b""))
        m = wire.MSG.unpack(s.recv(wire.MSG.size + 1))
        if m[0] != wire.MSG_MAGIC or m[2] != wire.MSG_WELCOME or m[3] != 0:
            raise ConnectionError("agent of %s refused: %s" % (self.resource, wire.cstr(m[10])))
        s.settimeout(None)
        return s

    def _invoke(self, body):
        """(status, value, err, out bytes, text) for one request frame."""
        try:
            callee, types, args = wire.decode_req(body)
        except wire.XcallError as e:
            return wire.X_MALFORMED, 0, errno.EPROTO, b"", str(e)
        ex = self.exports.get(callee)
        if not ex or ex[0] != types:
            text = ("%s is exported as %s, called as %s" % (callee, ex[0], types) if ex
                    else "%s is not exported by this process" % callee)
            return wire.X_NOT_RUN, 0, errno.ENOSYS, b"", text
        items = wire.parse_types(types)
        params = "".join(c for c, _ in items[1:])
        values = [a[1] for a in args]
        caps = wire.outbuf_caps(params, values)
        pyargs, outs = [], []
        for (code, value, data), cap in zip(args, caps):
            if code == "o":
                buf = bytearray(cap) if value else None
                outs.append(buf if buf is not None else bytearray(cap))
                pyargs.append(buf)
            else:
                pyargs.append(wire.word_to_py(code, value, data))
        try:
            r = ex[1](*pyargs)
            err = 0
        except OSError as e:
            r, err = -1, e.errno or errno.EIO
        except Exception as e:  # the caller gets EIO; the text says what
            return wire.X_OK, (-1) & 0xFFFFFFFFFFFFFFFF, errno.EIO, self._outs(outs), repr(e)[:95]
        self.served += 1
        code, lay = items[0]
        if lay:  # a struct return travels first in the RESULT body
            try:
                data = lay.pack(r)
            except (struct.error, TypeError) as e:
                return (wire.X_OK, (-1) & 0xFFFFFFFFFFFFFFFF, errno.EIO, self._outs([bytearray(lay.size)] + outs),
                        ("%s returned no %s: %s" % (callee, types[:types.index("}") + 1], e))[:95])
            return wire.X_OK, 0, err, self._outs([data] + outs), ""
        return wire.X_OK, wire.py_to_word(code, r), err, self._outs(outs), ""

    @staticmethod
    def _outs(outs):
        return b"".join(bytes(o) + b"\0" * (wire.pad8(len(o)) - len(o)) for o in outs)

    def _serve_conn(self, s):
        while not self._stop:
            pkt = s.recv(wire.XHDR.size + wire.XCALL_BODY_MAX + 1)
            if not pkt:
                return
            try:
                h = wire.parse_xhdr(pkt)
            except wire.XcallError:
                continue
            if h["type"] != wire.X_CALL:
                continue
            status, value, err, out, text = self._invoke(pkt[wire.XHDR.size:])
            if value >= 1 << 63:
                value -= 1 << 64
            s.send(wire.xhdr(wire.X_RESULT, caller_epoch=h["caller_epoch"], req_id=h["req_id"],
                             body_len=len(out), err=err, value=value, status=status,
                             text=text.encode()) + out)

    def serve_forever(self):
        while not self._stop:
            try:
                s = self._connect()
            except OSError:
                time.sleep(0.05)
                continue
            self.connected.set()
            try:
                self._serve_conn(s)
            except OSError:
                pass
            finally:
                self.connected.clear()
                s.close()

    def start(self):
        t = threading.Thread(target=self.serve_forever, daemon=True)
        t.start()
        return t

