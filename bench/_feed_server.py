"""A directory served over HTTP/1.1 on 127.0.0.1 with ETag and Last-Modified, for bench_collect.

    python bench/_feed_server.py PORT DIRECTORY

../shared/peer-bench serves its feeds with `python -m http.server`, which answers 304 only to
If-Modified-Since and closes every connection. This is the same handler with the two things
real feed servers have on top: a strong ETag (from the file's mtime and size) answered with
304, and keep-alive. Every client in the benchmark, digest and its peers, reads this server.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    _etag: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        self._etag = None
        path = self.translate_path(self.path)
        try:
            st = os.stat(path)
        except OSError:
            return super().send_head()
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        wanted = [
            t.strip().removeprefix("W/") for t in self.headers.get("If-None-Match", "").split(",")
        ]
        if etag in wanted:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
            self.end_headers()
            return BytesIO(b"")
        self._etag = etag
        return super().send_head()

    def end_headers(self) -> None:
        if self._etag is not None:
            self.send_header("ETag", self._etag)
            self._etag = None
        super().end_headers()


def main() -> None:
    port, root = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=root))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
