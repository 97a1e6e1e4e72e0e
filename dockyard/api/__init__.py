"""The Docker Engine API over aiohttp: thin handlers that parse, call one service, render."""
