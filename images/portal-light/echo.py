"""WebSocket echo for localhost/portal-light: every text or binary message is sent back as it came.

Listens on a unix socket (argv[1]) behind the image's nginx, which routes <base>echo here. Uses the
`websockets` asyncio server (Sans-I/O core with its C speedups for masking) on uvloop when it is
available: one process, one core, tens of thousands of small round trips per second, far more
than one proxy hop needs to be visible. No compression (permessage-deflate off), no pings, no
Origin or path checks: it is a benchmark upstream, reachable only through the published port.
"""
import asyncio
import os
import signal
import sys

from websockets.asyncio.server import unix_serve


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main(path):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    if os.path.exists(path):
        os.unlink(path)
    async with unix_serve(echo, path, compression=None, ping_interval=None, max_size=16 << 20, max_queue=64):
        await stop


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(sys.argv[1]))
    else:
        uvloop.run(main(sys.argv[1]))
