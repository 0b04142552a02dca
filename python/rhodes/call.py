"""rhodes.call - a Python program calling other resources' functions.

ctypes over libgovrt: each function gets a real governed site (struct
gov_site, registered with __govrt_register_module like a C module's table),
so a call takes the C path exactly: govrt's slot, this resource's agent,
its rules (forward, deny, ...), the edge to the callee. Arguments are
Python values; an `o` parameter is a bytearray, filled in place (its
capacity is the next `z` argument); a struct by value is a flat tuple of its
scalar members (rhodes.wire.Layout), a string member a str and a buffer member
bytes (or None), its z member the buffer's length as in C; one returned comes
back as such a tuple. Not the serving side (rhodes.serve).
"""
import ctypes
import errno as _errno
import os
import time

from . import wire

RUN_NATIVE, RUN_RETURN = 0, 1


class Site(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("kind", ctypes.c_uint8), ("ret_conv", ctypes.c_uint8),
                ("nparams", ctypes.c_uint8), ("reserved", ctypes.c_uint8),
                ("sysno", ctypes.c_int32), ("caller", ctypes.c_char_p),
                ("callee", ctypes.c_char_p), ("types", ctypes.c_char_p),
                ("file", ctypes.c_char_p), ("line", ctypes.c_uint32),
                ("verdict", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3),
                ("decision", ctypes.c_uint32), ("pad2", ctypes.c_uint32)]


class Module(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_uint32), ("reserved", ctypes.c_uint32),
                ("start", ctypes.POINTER(Site)), ("stop", ctypes.POINTER(Site)),
                ("resource", ctypes.c_char_p)]


class Call(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint64 * 6), ("ret", ctypes.c_int64)]


assert ctypes.sizeof(Site) == 64


class Function:
    def __init__(self, client, name, types):
        self.name, self.types, self.client = name, types, client
        self.items = wire.parse_types(types)
        self._site = Site(kind=1, ret_conv=0, nparams=len(self.items) - 1, sysno=-1,
                          caller=b"<python>", callee=name.encode(), types=types.encode(),
                          file=b"<python>", line=0)
        self._module = Module(1, 0, ctypes.pointer(self._site),
                              ctypes.cast(ctypes.addressof(self._site) + ctypes.sizeof(Site),
                                          ctypes.POINTER(Site)),
                              client.resource.encode())
        client.register(ctypes.byref(self._module))

    def governed(self):
        return bool(self._site.verdict)

    def __call__(self, *args):
        params = self.items[1:]
        if len(args) != len(params):
            raise TypeError("%s takes %d arguments" % (self.name, len(params)))
        call, keep = Call(), []
        for i, ((code, lay), v) in enumerate(zip(params, args)):
            if lay:  # the word is the address of the struct's bytes
                v = list(v)
                for j, c, _z in lay.ptrs:  # a string or buffer member: its address
                    if v[j] is not None:
                        mb = ctypes.create_string_buffer(
                            v[j].encode() if isinstance(v[j], str) else bytes(v[j]),
                            None if c == "s" else max(len(v[j]), 1))
                        keep.append(mb)
                    v[j] = ctypes.addressof(mb) if v[j] is not None else 0
                b = ctypes.create_string_buffer(lay.pack(v), lay.size)
                keep.append(b)
                call.arg[i] = ctypes.addressof(b)
            elif code == "s" and v is not None:
                b = ctypes.create_string_buffer(v.encode() if isinstance(v, str) else bytes(v))
                keep.append(b)
                call.arg[i] = ctypes.addressof(b)
            elif code in "bo" and v is not None:
                b = (ctypes.c_char * max(len(v), 1)).from_buffer(v) if code == "o" else \
                    ctypes.create_string_buffer(bytes(v), max(len(v), 1))
                keep.append(b)
                call.arg[i] = ctypes.addressof(b)
            else:
                call.arg[i] = wire.py_to_word(code, v)
        if not self._site.verdict:
            raise OSError(_errno.EHOSTUNREACH, "%s is not governed here (no forward rule in "
                          "force, or no agent)" % self.name)
        rcode, rlay = self.items[0]
        if rlay:  # a struct return: govrt writes it where ret points
            rbuf = ctypes.create_string_buffer(rlay.size)
            call.ret = ctypes.addressof(rbuf)
        ctypes.set_errno(0)
        r = self.client.dispatch(ctypes.byref(self._site), ctypes.byref(call))
        err = ctypes.get_errno()
        if r != RUN_RETURN:
            raise OSError(_errno.EHOSTUNREACH, "%s: the agent said to run it here" % self.name)
        value = wire.word_to_py(self.types[0] if self.types[0] != "p" else "L",
                                call.ret & 0xFFFFFFFFFFFFFFFF, None)
        if rcode == "v":
            value = None
        if rlay:
            value = rlay.unpack(rbuf.raw[:rlay.size])
        return value, err


class Client:
    def __init__(self, resource=None, lib=None):
        self.resource = resource or os.environ.get("GOV_RESOURCE", "")
        if not self.resource:
            raise ValueError("Client needs a resource (or GOV_RESOURCE)")
        # govrt reads GOV_RESOURCE when it starts, in the first registration
        os.environ["GOV_RESOURCE"] = self.resource
        self.lib = ctypes.CDLL(lib or os.environ.get("RHODES_LIBGOVRT", "libgovrt.so.1"),
                               use_errno=True)
        # getattr: a __name inside a class would be mangled
        self.dispatch = getattr(self.lib, "__govrt_dispatch")
        self.dispatch.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.register = getattr(self.lib, "__govrt_register_module")
        self.lib.govrt_connected.restype = ctypes.c_int
        self.functions = []

    def function(self, name, types, wait_s=5.0):
        """A callable for another resource's function; waits until the
        rules in force govern it. Returns (value, errno) when called."""
        why = wire.check_types(types)
        if why:
            raise ValueError("%s: type string %r: %s" % (name, types, why))
        f = Function(self, name, types)
        self.functions.append(f)
        end = time.time() + wait_s
        while not f.governed() and time.time() < end:
            time.sleep(0.01)
        return f
