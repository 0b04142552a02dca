"""rhodes.wire - the frames of docs/wire.md and docs/xcall.md in Python.

The layouts are those of include/gov/wire.h and include/gov/xcall.h
(little-endian, natural alignment); the type codes are read from
include/gov/types.def, the one definition, so Python and C cannot drift
apart. Decoding checks every field before use and names the first wrong
one, as runtime/wire.c does. Not a transport: rhodes.serve owns the socket.
"""
import os
import re
import struct

GOV_NAME_MAX = 64
GOV_MAX_ARGS = 6

MSG_MAGIC = 0x4D564F47      # "GOVM"
REQ_MAGIC = 0x51564F47      # "GOVQ"
XCALL_MAGIC = 0x58564F47    # "GOVX"
WIRE_VERSION = 2
TYPES_MAX = 48             # GOV_TYPES_MAX: a type string, NUL included
STRUCT_MAX = 4096
XCALL_VERSION = 1
XCALL_BODY_MAX = 128 * 1024

MSG_HELLO, MSG_WELCOME, MSG_TABLE = 1, 2, 3
ROLE_PROCESS, ROLE_CONTROL, ROLE_SERVER = 1, 2, 3
X_HELLO, X_WELCOME, X_CALL, X_RESULT = 1, 2, 3, 4
X_OK, X_NOT_RUN, X_UNKNOWN, X_MALFORMED = 0, 1, 2, 3

# struct gov_msg, gov_wire_req, gov_wire_arg, gov_xcall_hdr
MSG = struct.Struct("<IHHiIQQiI64s160s")
REQ = struct.Struct("<IHBBQQiI64s48s")
ARG = struct.Struct("<B3sIQ")
XHDR = struct.Struct("<IHHQQIiqBB6s64s96s")
assert (MSG.size, REQ.size, ARG.size, XHDR.size) == (264, 144, 16, 208)


class XcallError(Exception):
    """A frame that does not decode; str() names the field."""


def _types_def():
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.environ.get("RHODES_TYPES_DEF"),
                 os.path.join(here, "..", "..", "include", "gov", "types.def"),
                 "/usr/local/include/gov/types.def", "/usr/include/gov/types.def"):
        if path and os.path.exists(path):
            return path
    raise ImportError("rhodes: cannot find gov/types.def (set RHODES_TYPES_DEF)")


def _load_types():
    text = open(_types_def()).read()
    found = re.findall(r"^GOV_TYPE\('(.)',\s*(\w+),", text, re.M)
    if not found:
        raise ImportError("rhodes: no GOV_TYPE lines in types.def")
    return {code: name for code, name in found}


TYPES = _load_types()  # code -> NAME, e.g. 'l' -> 'LONG'


def cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def pad8(n):
    return (n + 7) & ~7


# struct members (gov/typestr.h): code -> struct module format, C size;
# s and b are pointers whose bytes travel after the struct's
MEMBERS = {"c": "B", "h": "H", "i": "i", "u": "I", "f": "f",
           "l": "q", "L": "Q", "z": "Q", "d": "d", "p": "Q", "s": "Q", "b": "Q"}
PTRS_MAX = 16              # GOV_STRUCT_PTRS
NULL_LEN = (1 << 64) - 1   # GOV_WIRE_NULL_LEN: a NULL string or buffer member


class Layout:
    """A struct by value: `fmt` packs and unpacks its bytes (C padding as
    explicit pad bytes), one flat value per scalar member in order (arrays
    and nested structs flattened), as gov/typestr.h lays it out. `ptrs`
    lists its string and buffer members as (flat index, code, flat index of
    a b's z member or None), in layout order: their values are a str or
    bytes (or None) in Python, pointers in C."""

    def __init__(self, fmt, size, align, nflat=0, ptrs=()):
        self.fmt, self.size, self.align = fmt, size, align
        self.nflat, self.ptrs = nflat, list(ptrs)
        self.st = struct.Struct("<" + fmt)
        assert self.st.size == size

    def pack(self, values):
        return self.st.pack(*values)

    def unpack(self, data):
        return self.st.unpack(data)


def _struct(t, pos, depth):
    """(Layout, position after its '}') of the struct at t[pos] == '{'."""
    if depth > 4:
        raise ValueError("structs nest more than 4 deep")
    pos += 1
    if t[pos:pos + 1] == "}":
        raise ValueError("a struct needs at least one member")
    fmt, off, al, nflat, ptrs, unpaired = "", 0, 1, 0, [], []
    while t[pos:pos + 1] != "}":
        m = re.match(r"[0-9]+", t[pos:])
        count = 1
        if m:
            if m.group()[0] == "0":
                raise ValueError("an array count starts with 1..9")
            count = int(m.group())
            if count > STRUCT_MAX:
                raise ValueError("an array count is larger than the largest struct")
            pos += len(m.group())
        c = t[pos:pos + 1]
        if c == "{":
            sub, pos = _struct(t, pos, depth + 1)
            mfmt, msize, malign, mflat = sub.fmt, sub.size, sub.align, sub.nflat
            sub_ptrs = [(nflat + i, code, None if z is None else nflat + z)
                        for i, code, z in sub.ptrs]
        elif c and c in MEMBERS:
            mfmt, pos, mflat, sub_ptrs = MEMBERS[c], pos + 1, 1, []
            msize = malign = struct.calcsize("<" + mfmt)
        else:
            raise ValueError("not a struct member code (c h i u l L z d f p s b, or a struct)"
                             if c else "a struct has no closing }")
        if m and (c in "sb" or sub_ptrs):
            raise ValueError("a string or buffer member (or a struct holding one) "
                             "cannot be an array")
        if c in "sb":
            sub_ptrs = [(nflat, c, None)]
            if c == "b":
                unpaired.append(len(ptrs))
        elif c == "z" and unpaired:
            if count > 1:
                raise ValueError("the z member that is a buffer's length cannot be an array")
            for k in unpaired:
                ptrs[k] = (ptrs[k][0], "b", nflat)
            unpaired = []
        ptrs += sub_ptrs
        if len(ptrs) > PTRS_MAX:
            raise ValueError("more than 16 string and buffer members")
        gap = (-off) % malign
        fmt += "%dx" % gap if gap else ""
        fmt += mfmt * count
        off += gap + msize * count
        nflat += mflat * count
        al = max(al, malign)
        if off > STRUCT_MAX:
            raise ValueError("the struct is larger than 4096 bytes")
    if unpaired:
        raise ValueError("a b member needs a z member after it in the same struct (its length)")
    tail = (-off) % al
    return Layout(fmt + ("%dx" % tail if tail else ""), off + tail, al, nflat, ptrs), pos + 1


def parse_types(types):
    """[(code, Layout-or-None)] per item of a type string: the return, then
    each parameter; a struct's code is '{'. ValueError says why."""
    if len(types) >= TYPES_MAX:
        raise ValueError("a type string is at most 47 characters")
    items, pos = [], 0
    while pos < len(types):
        if len(items) >= GOV_MAX_ARGS + 1:
            raise ValueError("more than 6 parameters")
        c = types[pos]
        if c == "{":
            lay, pos = _struct(types, pos, 1)
            items.append(("{", lay))
            continue
        if c == "}" or c.isdigit():
            raise ValueError("a count or } outside a struct")
        items.append((c, None))
        pos += 1
    if not items:
        raise ValueError("an empty type string (it needs a return code)")
    return items


def check_types(types):
    """Why a type string cannot be served or called, or None."""
    try:
        items = parse_types(types)
    except ValueError as e:
        return str(e)
    top = "".join(c for c, _ in items)
    for i, c in enumerate(top):
        if c not in TYPES:
            return "unknown type code %r (gov/types.def)" % c
        if c in "ch":
            return "c and h are struct members only (use i for a char or short)"
        if i and c == "v":
            return "v is only a return type"
        if i and c in "bo" and "z" not in top[i + 1:]:
            return "a b or o parameter needs a z parameter after it (its length)"
    if top[0] in "sbo":
        return "a return type must be a scalar, p or a struct"
    if items[0][1] and items[0][1].ptrs:
        return ("a returned struct cannot hold a string or buffer (s, b): its pointers "
                "would point into the callee's memory")
    return None


def _members(buf, off, end, lay, values, arg):
    """The string and buffer members after a struct's bytes (buf[off:end]):
    values with each one's pointer word replaced by its str or bytes (None
    for NULL), checked as runtime/wire.c checks them."""
    values = list(values)
    for i, code, z in lay.ptrs:
        if end - off < 8:
            raise XcallError("frame argument %d member %d: its length word runs past the "
                             "argument" % (arg, i))
        n = struct.unpack_from("<Q", buf, off)[0]
        off += 8
        if n == NULL_LEN:
            values[i] = None
            continue
        if n > end - off or pad8(n) > end - off:
            raise XcallError("frame argument %d member %d: length %d runs past the argument"
                             % (arg, i, n))
        data = bytes(buf[off:off + n])
        if code == "b" and n != values[z]:
            raise XcallError("frame argument %d member %d: %d bytes of buffer, its z member "
                             "says %d" % (arg, i, n, values[z]))
        if code == "s" and not data.endswith(b"\0"):
            raise XcallError("frame argument %d member %d: string not NUL-terminated"
                             % (arg, i))
        values[i] = data if code == "b" else data[:-1].decode("utf-8", "replace")
        off += pad8(n)
    if off != end:
        raise XcallError("frame argument %d field len: its struct and members are %d bytes"
                         % (arg, off))
    return tuple(values)


def outbuf_caps(params, values):
    """Capacity of each o parameter: the value of the next z (docs/xcall.md)."""
    caps = []
    for i, c in enumerate(params):
        if c != "o":
            caps.append(0)
            continue
        j = params.find("z", i + 1)
        if j < 0:
            raise XcallError("an o parameter with no z after it")
        caps.append(values[j])
    return caps


def decode_req(buf):
    """A request frame -> (callee, types, [(type, value, bytes-or-None)])."""
    if len(buf) < REQ.size:
        raise XcallError("frame: %d bytes, shorter than the header" % len(buf))
    (magic, version, kind, nargs, _seq, _site, _sysno, body_len, callee,
     types) = REQ.unpack_from(buf)
    if magic != REQ_MAGIC:
        raise XcallError("frame field magic: 0x%08x" % magic)
    if version != WIRE_VERSION:
        raise XcallError("frame field version: %d" % version)
    if kind not in (1, 2):
        raise XcallError("frame field kind: %d" % kind)
    if nargs > GOV_MAX_ARGS:
        raise XcallError("frame field nargs: %d" % nargs)
    if b"\0" not in callee:
        raise XcallError("frame field callee: not NUL-terminated")
    if b"\0" not in types:
        raise XcallError("frame field types: not NUL-terminated")
    types = cstr(types)
    why = check_types(types)
    if why:
        raise XcallError("frame field types: %s" % why)
    items = parse_types(types)
    if len(items) != nargs + 1:
        raise XcallError("frame field types: needs 1 + nargs items")
    if body_len != len(buf) - REQ.size:
        raise XcallError("frame field body_len: %d" % body_len)
    off, args = REQ.size, []
    for i in range(nargs):
        if off + ARG.size > len(buf):
            raise XcallError("frame argument %d: record runs past the end" % (i + 1))
        t, _p, n, value = ARG.unpack_from(buf, off)
        off += ARG.size
        code, lay = items[i + 1]
        if chr(t) != code:
            raise XcallError("frame argument %d field type" % (i + 1))
        if n and chr(t) not in "sb{":
            raise XcallError("frame argument %d field len: bytes for a scalar" % (i + 1))
        if lay and (n < pad8(lay.size) if lay.ptrs else n != lay.size):
            raise XcallError("frame argument %d field len: %d bytes, the struct is %d"
                             % (i + 1, n, lay.size))
        if pad8(n) > len(buf) - off:
            raise XcallError("frame argument %d field len: runs past the end" % (i + 1))
        data = bytes(buf[off:off + n]) if n else None
        if chr(t) == "s" and data is not None and not data.endswith(b"\0"):
            raise XcallError("frame argument %d: string not NUL-terminated" % (i + 1))
        if lay:
            data = lay.unpack(data[:lay.size])
            if lay.ptrs:
                data = _members(buf, off + pad8(lay.size), off + n, lay, data, i + 1)
        args.append((chr(t), value, data))
        off += pad8(n)
    if off != len(buf):
        raise XcallError("frame: %d bytes left over" % (len(buf) - off))
    return cstr(callee), types, args


def xhdr(type_, **kw):
    f = dict(magic=XCALL_MAGIC, version=XCALL_VERSION, type=type_, caller_epoch=0,
             req_id=0, body_len=0, err=0, value=0, status=0, proto=0,
             name=b"", text=b"")
    f.update(kw)
    return XHDR.pack(f["magic"], f["version"], f["type"], f["caller_epoch"], f["req_id"],
                     f["body_len"], f["err"], f["value"], f["status"], f["proto"], b"",
                     f["name"][:GOV_NAME_MAX - 1], f["text"][:95])


def parse_xhdr(buf):
    if len(buf) < XHDR.size:
        raise XcallError("xcall frame field length")
    (magic, version, type_, caller_epoch, req_id, body_len, err, value, status, proto,
     _pad, name, text) = XHDR.unpack_from(buf)
    if magic != XCALL_MAGIC:
        raise XcallError("xcall frame field magic")
    if version != XCALL_VERSION:
        raise XcallError("xcall frame field version")
    if not X_HELLO <= type_ <= X_RESULT:
        raise XcallError("xcall frame field type")
    if body_len > XCALL_BODY_MAX or body_len != len(buf) - XHDR.size:
        raise XcallError("xcall frame field body_len")
    return dict(type=type_, caller_epoch=caller_epoch, req_id=req_id, body_len=body_len,
                err=err, value=value, status=status, proto=proto, name=cstr(name),
                text=cstr(text))


def word_to_py(code, value, data):
    """One argument's 64-bit word (and bytes) as a Python value."""
    if code == "i":
        v = value & 0xFFFFFFFF
        return v - (1 << 32) if v >> 31 else v
    if code == "u":
        return value & 0xFFFFFFFF
    if code == "l":
        return value - (1 << 64) if value >> 63 else value
    if code == "d":
        return struct.unpack("<d", struct.pack("<Q", value))[0]
    if code == "f":
        return struct.unpack("<f", struct.pack("<I", value & 0xFFFFFFFF))[0]
    if code == "s":
        return None if data is None and not value else (data or b"\0")[:-1].decode("utf-8", "replace")
    if code == "b":
        return None if data is None and not value else (data or b"")
    if code == "{":
        return data  # the struct's members, a flat tuple (Layout)
    return value  # L, z, p


def py_to_word(code, v):
    """A Python value as a 64-bit word, bit for bit in the low bytes."""
    if code == "v" or v is None:
        return 0
    if code == "d":
        return struct.unpack("<Q", struct.pack("<d", float(v)))[0]
    if code == "f":
        return struct.unpack("<I", struct.pack("<f", float(v)))[0]
    return int(v) & 0xFFFFFFFFFFFFFFFF


def run_path(resource, suffix):
    d = os.environ.get("GOV_RUN_DIR")
    if not d:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        d = os.path.join(xdg, "rhodes") if xdg else "/tmp/rhodes-%d" % os.getuid()
    return os.path.join(d, "%s.%s" % (resource, suffix))
