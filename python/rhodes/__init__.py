"""rhodes - Python on Rhodes' cross-resource calls (docs/xcall.md).

    from rhodes import Server, Client

    srv = Server("py-svc")                  # this process serves py-svc's exports
    srv.export("py_add", "lll", lambda a, b: a + b)
    srv.start()                             # a thread; srv.serve_forever() blocks

    cli = Client("py-app")                  # this process is resource py-app
    add = cli.function("c_add", "lll")      # a governed call site, like GOV_CALL
    add(2, 3)

Server speaks the documented wire format in pure Python (rhodes.wire);
Client is ctypes over libgovrt, so its calls take exactly the path of a C
program's: slot, agent, edge, callee. Type codes come from
include/gov/types.def. Not a rule or store client: use govctl for that.
"""
from .wire import TYPES, XcallError
from .serve import Server
from .call import Client

__all__ = ["Server", "Client", "TYPES", "XcallError"]
