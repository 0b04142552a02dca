"""tests/xcall/pyserve.py - a Python service for tests/t_python.sh: serves
py_* functions as resource $GOV_RESOURCE through rhodes.Server."""
import errno
import sys

sys.path.insert(0, sys.argv[1])
import rhodes  # noqa: E402


def py_add(a, b):
    return a + b


def py_avg(a, b):
    return (a + b) / 2


def py_half(f):
    return f / 2


def py_greet(name, out, cap):
    text = ("hello, " + name).encode()
    out[:len(text)] = text[:cap]
    return len(text)


def py_len(b, n):
    return sum(b[:n])


def py_fail(e):
    raise OSError(e, "refused")


def py_pt(p, k):
    return (p[0] * k, p[1] * k)


def py_rec(d, k):
    """d: struct doc (tests/xcall/peer.c) as a flat tuple: tag, then struct
    rec's name (str or None), n, data (bytes or None), len, then title."""
    tag, name, n, data, length, title = d
    assert data is None or len(data) == length
    return (tag + (len(name) if name is not None else -1) * 1000 + sum(data or b"") * 10 + n
            + (len(title) if title is not None else -1) * 100000 + k)


def py_boom():
    raise ValueError("boom")


srv = rhodes.Server()
srv.load_exports(sys.argv[2], globals())
print("serving", flush=True)
srv.serve_forever()
