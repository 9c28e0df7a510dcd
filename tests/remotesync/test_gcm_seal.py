"""The sync tunnel's SSH send path seals AES-GCM packets with ``seal_packet`` (ciphertext and
tag in one buffer, the length header written separately): the same bytes as RFC 5647's
``AESGCM(key)`` for each packet, the invocation counter advancing per packet whichever way a
packet was sealed, and the peer opens them."""

from __future__ import annotations

import os

import pytest
from asyncssh.crypto import cipher as module
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mutagen_actors.actors.forward.remote import _reuse_gcm_keys


def _iv(fixed: bytes, invocation: int) -> bytes:
    return fixed + invocation.to_bytes(8, "big")


@pytest.mark.parametrize("name, key_size", [("aes128-gcm", 16), ("aes256-gcm", 32)])
@pytest.mark.parametrize("ways", [["seal", "seal", "seal"], ["seal", "stock", "seal", "stock"]])
def test_sealed_packets_are_the_rfc_bytes_and_open(name, key_size, ways):
    _reuse_gcm_keys()
    key, fixed, start = os.urandom(key_size), os.urandom(4), 2**64 - 2  # counter wraps
    sealer = module.GCMCipher(name, key, _iv(fixed, start))
    opener = module.GCMCipher(name, key, _iv(fixed, start))
    for index, way in enumerate(ways):
        data = os.urandom(32768 + index)
        header = len(data).to_bytes(4, "big")
        if way == "seal":
            sealed = sealer.seal_packet(header, data)
        else:
            packet, tag = sealer.encrypt_and_sign(header, data)
            sealed = packet[len(header):] + tag
        expected = AESGCM(key).encrypt(_iv(fixed, (start + index) % 2**64), data, header)
        assert sealed == expected
        assert opener.verify_and_decrypt(header, sealed[:-16], sealed[-16:]) == data
