"""localstripe (pinned in requirements-dev.txt) without its save to disk.

localstripe pickles its whole state to /tmp/localstripe.pickle after every write: each write
costs time in proportion to the account (seeding 10,000 customers takes quadratic time) and
every instance on the machine writes the same file. The tests and the import benchmark start
an instance of their own, from scratch, and never reload it, so the save is switched off here;
the server is localstripe's own.

Usage: .venv/bin/python scripts/localstripe_server.py --port PORT [--exit-with-parent]

`--exit-with-parent`: the server exits once the process that started it has ended (a test
binary sharing one instance among its tests, which has no moment to stop it).
"""

import os
import sys
import threading
import time

import localstripe.resources as resources
import localstripe.server as server

resources.Store.dump_to_disk = lambda self: None


def exit_with(parent):
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


if __name__ == "__main__":
    if "--exit-with-parent" in sys.argv:
        sys.argv.remove("--exit-with-parent")
        threading.Thread(target=exit_with, args=(os.getppid(),), daemon=True).start()
    if "--from-scratch" not in sys.argv:
        sys.argv.append("--from-scratch")
    server.start()
