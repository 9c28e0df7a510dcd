"""The forwarder's AES-GCM shim for asyncssh (one ``AESGCM`` per key instead of one per packet)
seals and opens exactly as RFC 5647 says: the same bytes as ``AESGCM(key)`` for each packet,
with the IV's invocation counter advancing per packet, and a bad tag opens to ``None``."""

from __future__ import annotations

import os

import pytest
from asyncssh.crypto import cipher as module
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mutagen_actors.actors.forward.remote import _reuse_gcm_keys


def _iv(fixed: bytes, invocation: int) -> bytes:
    return fixed + invocation.to_bytes(8, "big")


@pytest.mark.parametrize("name, key_size", [("aes128-gcm", 16), ("aes256-gcm", 32)])
@pytest.mark.parametrize("sizes", [[0, 1, 32768], [16, 4095, 100000, 5]])
def test_sealed_packets_are_the_rfc_bytes_and_open_again(name, key_size, sizes):
    _reuse_gcm_keys()
    assert module.GCMCipher._keys_reused
    key, fixed, start = os.urandom(key_size), os.urandom(4), 2**64 - 2  # counter wraps
    sealer = module.GCMCipher(name, key, _iv(fixed, start))
    opener = module.GCMCipher(name, key, _iv(fixed, start))
    for index, size in enumerate(sizes):
        header, data = index.to_bytes(4, "big"), os.urandom(size)
        packet, tag = sealer.encrypt_and_sign(header, data)
        expected = AESGCM(key).encrypt(_iv(fixed, (start + index) % 2**64), data, header)
        assert (packet, tag) == (header + expected[:-16], expected[-16:])
        assert isinstance(packet, bytes) and isinstance(tag, bytes)
        assert opener.verify_and_decrypt(header, packet[len(header):], tag) == data


def test_a_bad_tag_opens_to_none_and_the_counter_still_advances():
    _reuse_gcm_keys()
    key, iv = os.urandom(16), os.urandom(12)
    sealer, opener = module.GCMCipher("aes128-gcm", key, iv), module.GCMCipher("aes128-gcm", key, iv)
    packet, tag = sealer.encrypt_and_sign(b"head", b"payload")
    assert opener.verify_and_decrypt(b"head", packet[4:], bytes(16)) is None
    packet, tag = sealer.encrypt_and_sign(b"head", b"second")
    assert opener.verify_and_decrypt(b"head", packet[4:], tag) == b"second"
