"""The ``convmat`` command that ``pip install`` puts on PATH: the Rust command line itself.

It is the same code as the ``convmat`` binary (``convmat::cli::main``, reached through the extension
module), so the two cannot drift; ``cargo install --path .`` installs the binary without Python.
"""

import signal
import sys


def main() -> int:
    """Runs ``convmat`` on ``sys.argv`` and returns its exit status (0, 2 for bad input, 130 on Ctrl-C)."""
    # As the binary starts: Ctrl-C ends the process (commands with long computations install their own
    # handler, which stops between steps); a closed stdout is the library's to handle (Python already
    # ignores SIGPIPE, as Rust does).
    # Called in-process (a test, a notebook), the caller's handler comes back on return.
    previous = signal.signal(signal.SIGINT, signal.SIG_DFL)
    from ._native import cli_main

    try:
        return cli_main(sys.argv)
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
