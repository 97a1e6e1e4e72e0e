"""The [::1] UDP relay (network/loopback6_udp.py) against a real UDP server on ::1: a flow per
client, idle expiry, ICMP errors that do not end a flow, and close."""

from __future__ import annotations

import asyncio
import socket

from dockyard.network.loopback6_udp import open_udp_relay


class Echo(asyncio.DatagramProtocol):
    """Answers b"<source port>:<data>", so a client can tell which relay socket reached it."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(b"%d:" % addr[1] + data, addr)


async def start_echo(port: int = 0, host: str = "::1"):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(host, port))
    return transport, transport.get_extra_info("sockname")[1]


async def client(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect(("::1", port))
    return s


async def ask(s: socket.socket, data: bytes, timeout: float = 10) -> bytes:
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(s, data)
    return await asyncio.wait_for(loop.sock_recv(s, 70000), timeout)


async def until(cond, limit: float = 20) -> None:
    for _ in range(int(limit / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    assert cond()


def relay_port(relay) -> int:
    return relay.transport.get_extra_info("sockname")[1]


def test_each_client_has_its_own_flow_and_socket():
    async def main():
        echo, eport = await start_echo()
        relay = await open_udp_relay(0, "::1", eport)
        try:
            clients = [await client(relay_port(relay)) for _ in range(5)]
            replies = await asyncio.gather(*(ask(c, b"client%d" % i) for i, c in enumerate(clients)))
            ports = set()
            for i, r in enumerate(replies):
                src, _, data = r.partition(b":")
                assert data == b"client%d" % i
                ports.add(src)
            assert len(ports) == 5 and len(relay.flows) == 5  # one relay socket per client
            # a client's later datagrams take its flow's socket again; a 64 KiB one is not cut
            big = b"x" * 65000
            again = await ask(clients[0], big)
            assert again.partition(b":")[0] == replies[0].partition(b":")[0] and again.endswith(big)
            for c in clients:
                c.close()
        finally:
            relay.close()
            echo.close()

    asyncio.run(main())


def test_an_ipv4_only_container_is_reached_over_ipv4():
    async def main():
        echo, eport = await start_echo(host="127.0.0.1")
        relay = await open_udp_relay(0, "127.0.0.1", eport)
        try:
            c = await client(relay_port(relay))
            assert (await ask(c, b"four")).endswith(b":four")
            c.close()
        finally:
            relay.close()
            echo.close()

    asyncio.run(main())


def test_idle_flows_expire_and_a_new_datagram_opens_a_new_one():
    async def main():
        echo, eport = await start_echo()
        relay = await open_udp_relay(0, "::1", eport, timeout=1.5)
        try:
            c = await client(relay_port(relay))
            first = (await ask(c, b"a")).partition(b":")[0]
            await until(lambda: not relay.flows)
            second = (await ask(c, b"b")).partition(b":")[0]
            assert second != first and len(relay.flows) == 1
            c.close()
        finally:
            relay.close()
            echo.close()

    asyncio.run(main())


def test_port_unreachable_in_the_container_keeps_the_flow():
    async def main():
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        eport = probe.getsockname()[1]
        probe.close()  # nothing listens on eport now: the relay gets ICMP port unreachable
        relay = await open_udp_relay(0, "::1", eport)
        echo = None
        try:
            c = await client(relay_port(relay))
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(c, b"early")
            await until(lambda: len(relay.flows) == 1 and relay.flows[next(iter(relay.flows))].transport)
            flow = next(iter(relay.flows.values()))
            await loop.sock_sendall(c, b"early2")  # refused again, after the socket exists
            await asyncio.sleep(0.2)
            assert list(relay.flows.values()) == [flow] and not flow.closed
            echo, _ = await start_echo(eport)  # the server comes up: the same flow reaches it
            assert (await ask(c, b"late")).endswith(b":late")
            assert list(relay.flows.values()) == [flow]
            c.close()
        finally:
            relay.close()
            if echo is not None:
                echo.close()

    asyncio.run(main())


def test_close_ends_flows_and_frees_the_port():
    async def main():
        echo, eport = await start_echo()
        relay = await open_udp_relay(0, "::1", eport)
        port = relay_port(relay)
        c = await client(port)
        try:
            await ask(c, b"x")
            flow = next(iter(relay.flows.values()))
            relay.close()
            await until(lambda: relay.transport.get_extra_info("socket").fileno() == -1)
            assert flow.closed and not relay.flows and flow.transport.is_closing()
            # nothing on [::1]:port any more: the kernel answers port unreachable
            try:
                await ask(c, b"y", timeout=5)
                raise AssertionError("a reply after close")
            except ConnectionRefusedError:
                pass
            # the port can be bound again at once
            again = await open_udp_relay(port, "::1", eport)
            again.close()
        finally:
            c.close()
            echo.close()

    asyncio.run(main())
