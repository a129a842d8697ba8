"""HTTP transports for the remote backend: the `Transport` seam, h11 on asyncio, httpx."""
