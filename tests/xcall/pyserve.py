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


def py_boom():
    raise ValueError("boom")


srv = rhodes.Server()
srv.load_exports(sys.argv[2], globals())
print("serving", flush=True)
srv.serve_forever()
