#!/usr/bin/env python3
"""A TLS front for a container engine's API that requires a client certificate, like dockerd with
--tlsverify: makes a CA, a server certificate for 127.0.0.1, a client certificate from that CA and
one from another CA (with the openssl command), then forwards every accepted connection to the
engine's unix socket. Writes DIRECTORY/info.json (port and file paths) once listening, then serves until killed.

    tls_engine_proxy.py DIRECTORY /run/podman/podman.sock
"""
import asyncio, json, os, ssl, subprocess, sys

directory, upstream = sys.argv[1], sys.argv[2]
os.makedirs(directory, exist_ok=True)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def certificate(name, ca, extensions=None):
    key, csr, crt = (f"{directory}/{name}.{ext}" for ext in ("key", "csr", "pem"))
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    args = ["x509", "-req", "-in", csr, "-CA", f"{directory}/{ca}.pem", "-CAkey", f"{directory}/{ca}.key", "-CAcreateserial", "-out", crt, "-days", "2"]
    if extensions:
        with open(f"{directory}/{name}.ext", "w") as f:
            f.write(extensions)
        args += ["-extfile", f"{directory}/{name}.ext"]
    openssl(*args)
    return crt, key


for ca in ("ca", "other-ca"):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{directory}/{ca}.key", "-out", f"{directory}/{ca}.pem", "-days", "2", "-subj", f"/CN={ca}")
server = certificate("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
client = certificate("client", "ca", "extendedKeyUsage=clientAuth\n")
rogue = certificate("rogue", "other-ca", "extendedKeyUsage=clientAuth\n")

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=f"{directory}/ca.pem")
context.load_cert_chain(*server)
context.verify_mode = ssl.CERT_REQUIRED


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def handle(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_unix_connection(upstream)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def main():
    server_socket = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server_socket.sockets[0].getsockname()[1]
    info = {"port": port, "ca": f"{directory}/ca.pem", "cert": client[0], "key": client[1], "rogue_cert": rogue[0], "rogue_key": rogue[1]}
    with open(f"{directory}/info.tmp", "w") as f:
        json.dump(info, f)
    os.rename(f"{directory}/info.tmp", f"{directory}/info.json")
    async with server_socket:
        await server_socket.serve_forever()

asyncio.run(main())
