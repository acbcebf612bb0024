"""A TCP proxy that delays every chunk by a fixed time in each direction, to put a
database "a network hop away" on loopback (bench/side-by-side.sh, DB_DELAY_MS).
Order is kept; throughput is not limited.

    python3 bench/delay-proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT ONE_WAY_MS
"""

import asyncio
import sys
import time


async def pump(reader, writer, delay):
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    try:
        await task
    except ConnectionError:
        pass


async def main():
    listen, host, port, one_way_ms = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    delay = one_way_ms / 1000

    async def handle(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(
            pump(client_r, server_w, delay), pump(server_r, client_w, delay)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", int(listen))
    print(
        f"delay proxy on 127.0.0.1:{listen} -> {host}:{port}, {one_way_ms} ms each way",
        flush=True,
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
