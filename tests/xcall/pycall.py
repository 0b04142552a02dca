"""tests/xcall/pycall.py - a Python caller for tests/t_python.sh: calls a C
service's c_* functions through libgovrt (rhodes.Client) and prints
name=result lines."""
import errno
import sys

sys.path.insert(0, sys.argv[1])
import rhodes  # noqa: E402

cli = rhodes.Client()
mul = cli.function("c_mul", "lll")
scale = cli.function("c_scale", "ddf")
upper = cli.function("c_upper", "lsoz")
bsum = cli.function("c_bsum", "lbz")
err = cli.function("c_err", "ii")
pt = cli.function("c_pt", "{id}{id}i")
tri = cli.function("c_tri", "d{3l}")
print("c_mul=%d" % mul(6, 7)[0])
print("c_scale=%.3f" % scale(3.0, 0.5)[0])
out = bytearray(16)
n, _ = upper("rhodes", out, len(out))
print("c_upper=%d %s" % (n, out[:n].decode()))
data = bytes(range(200))
print("c_bsum=%d" % bsum(data, len(data))[0])
r, e = err(errno.ENOENT)
print("c_err=%d errno=%s" % (r, errno.errorcode.get(e, e)))
a, b = pt((7, 1.25), 3)[0]
print("c_pt=%d %.3f" % (a, b))
print("c_tri=%.1f" % tri((100, -20, 3))[0])
rec = cli.function("c_rec", "l{sibz}l")
doc = cli.function("c_doc", "l{c{sibz}s}")
print("c_rec=%d" % rec(("name", 3, bytes(range(10)), 10), 1)[0])
print("c_rec_null=%d" % rec((None, 3, None, 10), 1)[0])
print("c_doc=%d" % doc((ord("D"), "xy", 2, bytes(i & 255 for i in range(5000)), 5000,
                        "a title"))[0])
try:
    cli.function("c_nothing", "l", wait_s=0.2)(  )
except OSError as x:
    print("c_nothing=%s" % errno.errorcode.get(x.errno, x.errno))
