"""moto's S3 server on 127.0.0.1 (real HTTP) for the tests of the S3 client and the backups."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def running_moto() -> Iterator[str]:
    """A moto server on a free port for the duration of the block; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    from opsnb.sandbox.postgres import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
